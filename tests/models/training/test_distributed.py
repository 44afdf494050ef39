"""ShardSampler: every validation item seen by exactly one process, none twice, in any world size."""
import pytest

from models.training.distributed import ShardSampler


@pytest.mark.parametrize("num_items,world", [(10, 1), (10, 3), (7, 4), (2, 4), (0, 2)])
def test_shards_cover_every_item_exactly_once(num_items, world):
    shards = [list(ShardSampler(num_items, rank, world)) for rank in range(world)]
    seen = sorted(i for shard in shards for i in shard)
    assert seen == list(range(num_items))  # DistributedSampler would pad with repeats here
    assert [len(ShardSampler(num_items, rank, world)) for rank in range(world)] == [len(s) for s in shards]
    assert max(map(len, shards)) - min(map(len, shards)) <= 1

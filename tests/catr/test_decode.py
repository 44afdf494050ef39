"""greedy_decode against the reference procedure (the whole network at every step)."""
import pytest
import torch

import catr


@pytest.fixture(scope="module")
def image():
    return torch.randn(3, 48, 80, generator=torch.Generator().manual_seed(1))


def _assert_same(fast: catr.Decoded, slow: catr.Decoded):
    assert fast.ids == slow.ids
    assert fast.ended == slow.ended
    assert fast.attention.shape == slow.attention.shape
    assert torch.allclose(fast.attention, slow.attention, atol=1e-6)


def test_same_ids_and_attention_rows_as_full_forward_steps(tiny_catr, image):
    fast = catr.greedy_decode(tiny_catr, image, max_steps=8, end_id=None)
    slow = catr.reference_greedy_decode(tiny_catr, image, max_steps=8, end_id=None)
    _assert_same(fast, slow)
    assert len(fast.ids) == 8 and not fast.ended
    assert fast.attention.shape == (8, 3, 4, 3, 5)  # steps, layers, heads, h, w
    assert torch.allclose(fast.attention.sum((-2, -1)), torch.ones(8, 3, 4), atol=1e-5)


def test_stops_at_the_end_token_with_a_row_for_the_end(tiny_catr, image):
    # Any id can play [SEP]: take the one the model emits third, so the caption ends there.
    end_id = catr.greedy_decode(tiny_catr, image, max_steps=3, end_id=None).ids[2]
    fast = catr.greedy_decode(tiny_catr, image, end_id=end_id)
    slow = catr.reference_greedy_decode(tiny_catr, image, end_id=end_id)
    _assert_same(fast, slow)
    assert fast.ended and end_id not in fast.ids
    assert fast.attention.shape[0] == len(fast.ids) + 1


def test_an_immediate_end_gives_an_empty_caption(tiny_catr, image):
    model = catr.build_model("tiny").eval()
    model.load_state_dict(tiny_catr.state_dict())
    with torch.no_grad():
        model.mlp.layers[-1].bias[catr.SEP_ID] = 1e4
    decoded = catr.greedy_decode(model, image)
    assert decoded.ids == [] and decoded.ended
    assert decoded.attention.shape == (1, 3, 4, 3, 5)


def test_rows_are_those_of_one_forward_pass_on_the_finished_caption(tiny_catr, image):
    decoded = catr.greedy_decode(tiny_catr, image, max_steps=6, end_id=None)
    caption = torch.tensor([[catr.CLS_ID] + decoded.ids])
    with torch.no_grad():
        _, attn = tiny_catr(image[None], caption, torch.zeros_like(caption, dtype=torch.bool), return_attention=True,
                       average_heads=False)
    for layer, weights in enumerate(attn):
        assert torch.allclose(decoded.attention[:, layer].flatten(-2), weights[0, :, :6].transpose(0, 1), atol=1e-6)


def test_decoding_in_pieces_with_past_equals_decoding_at_once(tiny_catr, image):
    caption = torch.randint(1000, 30000, (1, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        encoded = tiny_catr.encode(image[None])
        whole, whole_attn, _ = tiny_catr.decode(encoded, caption)
        first, _, past = tiny_catr.decode(encoded, caption[:, :4])
        rest, rest_attn, present = tiny_catr.decode(encoded, caption[:, 4:], past=past)
    assert torch.allclose(torch.cat((first, rest), dim=1), whole, atol=1e-5)
    for layer, (keys, values) in enumerate(present):
        assert keys.shape[2] == values.shape[2] == 9
        assert torch.allclose(rest_attn[layer], whole_attn[layer][:, :, 4:], atol=1e-6)


def test_leaves_the_thread_count_as_it_was(tiny_catr, image):
    threads = torch.get_num_threads()
    catr.greedy_decode(tiny_catr, image, max_steps=2)
    assert torch.get_num_threads() == threads


def test_refuses_training_mode_and_bad_max_steps(image):
    model = catr.build_model("tiny")
    with pytest.raises(ValueError, match="eval"):
        catr.greedy_decode(model, image)
    with pytest.raises(ValueError, match="max_steps"):
        catr.greedy_decode(model.eval(), image, max_steps=128)


def test_bench_caption_compares_loops_batches_and_beams_and_reports_json(capsys):
    import json

    import bench_caption
    bench_caption.main(["--steps", "3", "--repeats", "1", "--batch", "2", "--beam", "2", "--config", "tiny",
                        "--device", "cpu"])
    stdout = capsys.readouterr().out
    report = json.loads(stdout.strip().splitlines()[-1])
    assert report["same_tokens"] is True and report["batch_same_tokens"] is True
    assert report["speedup"] > 0 and report["batched_speedup"] > 0 and report["beam_over_greedy"] > 0
    assert (report["batch"], report["beam"], report["steps"]) == (2, 2, 3)
    assert "captions/s" in stdout and "beam 2 on one image" in stdout


@pytest.mark.parametrize("flag", ["--batch", "--beam", "--repeats"])
def test_bench_caption_refuses_zero(flag):
    from data.io import UserError
    import bench_caption
    with pytest.raises(UserError, match=f"{flag} must be at least 1"):
        bench_caption.main([flag, "0", "--config", "tiny", "--device", "cpu"])

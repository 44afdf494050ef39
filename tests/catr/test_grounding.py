"""The grader of a captioner's word maps: which words it grades, and what each method's scores hold."""
import json

import pytest
import torch
from PIL import Image

import catr
from catr.grounding import Grader, caption_ids
from catr.token_methods import TOKEN_METHODS
from data.coco_instances import category_mask, load_instances
from data.object_words import load_word_table

WIDTH, HEIGHT = 64, 48


@pytest.fixture(scope="module")
def grading():
    """(a tiny random captioner, its tokenizer, the word table, instances of one image holding a dog)."""
    torch.manual_seed(0)
    model = catr.build_model("tiny").eval()
    tokenizer = catr.load_tokenizer()
    return model, tokenizer, load_word_table(None, tokenizer.split_words)


def one_dog(folder):
    path = folder / "instances.json"
    path.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "1.jpg", "width": WIDTH, "height": HEIGHT}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 18, "segmentation": [[8, 8, 40, 8, 40, 30]]}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 17, "name": "cat"}]}))
    return load_instances(path)


def test_grades_the_words_of_present_objects_and_counts_absent_ones(grading, tmp_path):
    model, tokenizer, table = grading
    instances = one_dog(tmp_path)
    share = float(category_mask(instances, 1, "dog").mean())
    methods = ["attention@0", *TOKEN_METHODS, "uniform", "random"]
    grader = Grader(model, methods, table, instances, tokenizer, torch.device("cpu"))
    captions = [caption_ids(tokenizer.encode(text)[1:-1]) for text in ("a dog on grass", "a cat and a dog")]
    record = grader.grade(1, Image.new("RGB", (WIDTH, HEIGHT), (120, 90, 60)), captions)
    assert record["captions"] == [{"named": ["dog"], "absent": []}, {"named": ["cat", "dog"], "absent": ["cat"]}]
    assert [(word["word"], word["caption"]) for word in record["words"]] == [("dog", 0), ("dog", 1)]
    for word in record["words"]:
        assert set(word["methods"]) == set(methods) and word["log_prob"] < 0
        scores = word["methods"]
        # The uniform map's mass inside the object is the object's area share; it has no order to delete by.
        assert scores["uniform"]["correctness"] == pytest.approx(share, abs=1e-6)
        assert scores["uniform"]["deletion_most"] is None
        for method in methods[:-2] + ["random"]:
            curve = scores[method]["deletion_most"]
            assert len(curve) == 10 and curve[0] == 1.0 and all(value >= 0 for value in curve)


def test_without_deletion_no_curves_and_nothing_graded_without_a_named_object(grading, tmp_path):
    model, tokenizer, table = grading
    grader = Grader(model, ["attention@0", "uniform"], table, one_dog(tmp_path), tokenizer, torch.device("cpu"),
                    deletion=False)
    image = Image.new("RGB", (WIDTH, HEIGHT))
    graded = grader.grade(1, image, [caption_ids(tokenizer.encode("a dog")[1:-1])])
    assert "deletion_most" not in graded["words"][0]["methods"]["attention@0"]
    assert grader.grade(1, image, [caption_ids(tokenizer.encode("a red ball")[1:-1])])["words"] == []

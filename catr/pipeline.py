"""From image files to captions, a batch at a time: open, resize (to the side the model takes), preprocess,
`generate`."""
from data.images import open_or_skip

from .decode import MAX_STEPS, generate
from .preprocess import preprocess, resize_longer_side


def caption_files(model, paths: list, batch_size: int = 1, beam_size: int = 1, length_penalty: float = 0.0,
                  max_steps: int = MAX_STEPS, device="cpu", skip_bad_images: bool = True, all_beams: bool = False):
    """Caption image files `batch_size` at a time, yielding for each batch a list of (path, image,
    decoded): the resized RGB image and its `Decoded`, or, with `skip_bad_images`, (path, None, None)
    for a file that cannot be read, after a warning (else that file is one line). Same-size images of a
    batch are decoded together (see `generate`, also for `all_beams`)."""
    for start in range(0, len(paths), batch_size):
        opened = []
        for path in paths[start: start + batch_size]:
            image = open_or_skip(path, skip_bad_images)
            opened.append((path, None if image is None else resize_longer_side(image, model.image_size)))
        readable = [preprocess(image).to(device) for _, image in opened if image is not None]
        decoded = iter(generate(model, readable, beam_size=beam_size, max_steps=max_steps,
                                length_penalty=length_penalty, all_beams=all_beams))
        yield [(path, image, None if image is None else next(decoded)) for path, image in opened]

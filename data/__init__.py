"""Image files, labels, data sets, run folders and the COCO-format readers: nothing here knows about models."""

"""What a model looked at and how far to trust it: map math, relevancy, faithfulness and localisation scores."""

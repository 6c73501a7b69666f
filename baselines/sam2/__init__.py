"""SAM 2's video predictor as a box-prompted 2D tracker (an adapter on the optional ``sam2`` extra): ``labeler.py``."""

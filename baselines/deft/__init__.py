"""DEFT (Chaabane et al., 2021), small: a CenterNet-style detector, an appearance matcher and an LSTM motion veto."""

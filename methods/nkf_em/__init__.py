"""nkf-em: data association learned without identity labels (neural Kalman filter, Sinkhorn, EM; paper 003).

One model per file: ``features`` (measurements, appearance, pairwise features), ``sinkhorn`` (dustbin
Sinkhorn), ``kalman`` (filter + RTS smoother, torch), ``model`` (association network, learnable noise),
``train`` (EM as gradient descent on the marginal likelihood), ``track`` (online inference), ``method``
(the bench ``Method`` classes ``nkf-em`` and its supervised twin ``nkf-em-supervised``).
"""

"""Shared fixtures for the Sparse3DTrack tests: the smoke-scale synth-kitti world, loaded once per session."""

import pytest
import torch

from bench.data.datasets import load_dataset

torch.set_num_threads(1)  # one thread: on a loaded 2-core box two spin-wait for each other


@pytest.fixture(scope="session")
def smoke():
    return load_dataset("synth-kitti", scale="smoke", seed=0)

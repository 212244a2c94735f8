"""Shared pytest configuration for the lvm tests."""


def pytest_configure(config):
    # Tests that read the real MNIST files (LVM_DATA_DIR in CI); select or deselect them with -m.
    config.addinivalue_line("markers", "needs_mnist: reads the real MNIST test split from LVM_DATA_DIR")

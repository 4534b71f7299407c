"""minwa packaging: the root folders augment/, datasets/ and launch/ install as
minwa.augment, minwa.datasets and minwa.launch so nothing generic lands at the top
of site-packages."""
from setuptools import find_packages, setup

_ROOTS = {"augment": "minwa.augment", "datasets": "minwa.datasets", "launch": "minwa.launch"}


def _packages():
    packages = find_packages(include=["minwa", "minwa.*"])
    for folder, name in _ROOTS.items():
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_packages(where=folder)]
    return packages


setup(
    name="minwa",
    version="0.1.0",
    description="Distributed training of convolutional networks over MPI (numpy or cupy)",
    python_requires=">=3.9",
    packages=_packages(),
    package_dir={"minwa": "minwa", **{name: folder for folder, name in _ROOTS.items()}},
    install_requires=["numpy>=1.22", "mpi4py>=3.1", "mpich; platform_system!='Windows'",
                      "h5py>=3.0", "Pillow>=9.0", "PyYAML>=5.4", "threadpoolctl>=3.1"],
    extras_require={
        "test": ["pytest>=7", "pytest-timeout>=2.1", "scipy>=1.8", "ruff", "opencv-python-headless", "numba"],
        "opencv": ["opencv-python-headless"],
        "numba": ["numba"],
        "gpu": ["cupy"],
        "plot": ["matplotlib"],
        "bench": ["torch", "albumentations"],
    },
    entry_points={"console_scripts": ["minwa=minwa.launch.cli:main",
                                      "minwa-launch=minwa.launch.mpirun:main"]},
)

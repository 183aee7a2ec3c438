"""What pyproject.toml cannot say: ``pip install .`` puts the shipped configs and the digits dataset
inside the package, as ``ppnets/configs/`` and ``ppnets/dataset/digits/``, from the checkout's
``configs/`` and ``dataset/digits/`` (one copy in git; ``ppnets.utils.shipped`` finds either place).
Their folders are listed as packages so that setuptools installs them as the data they are."""
from setuptools import find_namespace_packages, setup

NOT_PACKAGES = ["__pycache__", "*.__pycache__", "*.__pycache__.*"]


def tree(package: str, folder: str) -> list:
    """``package`` and one package per sub-folder of ``folder`` (which it is installed from)."""
    return [package] + [f"{package}.{sub}" for sub in find_namespace_packages(folder, exclude=NOT_PACKAGES)]


setup(
    packages=find_namespace_packages(include=["ppnets", "ppnets.*"], exclude=NOT_PACKAGES)
    + tree("ppnets.configs", "configs") + tree("ppnets.dataset.digits", "dataset/digits"),
    package_dir={"ppnets.configs": "configs", "ppnets.dataset.digits": "dataset/digits"},
    package_data={"ppnets.configs": ["**/*.yaml"],
                  "ppnets.dataset.digits": ["*.txt", "README.md", "train/*/*.png", "val/*/*.png"]},
)

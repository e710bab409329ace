"""Packaging for convmlp_mm, the ConvMLP backbone as an OpenMMLab plugin."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def read_version() -> str:
    namespace: dict = {}
    exec((ROOT / 'convmlp_mm' / 'version.py').read_text(), namespace)
    return namespace['__version__']


setup(
    name='convmlp_mm',
    version=read_version(),
    description='ConvMLP (Li et al. 2021) backbones for MMDetection 3.x, MMSegmentation 1.x and MMPretrain 1.x',
    long_description=(ROOT / 'README.md').read_text() if (ROOT / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(include=['convmlp_mm', 'convmlp_mm.*']),
    # Only what the backbone itself needs; each downstream library is optional (see extras).
    install_requires=['torch>=1.8', 'mmengine>=0.10.0,<1.0', 'mmcv>=2.0.0rc4,<2.2.0'],
    extras_require={
        'det': ['mmdet>=3.0.0,<3.4.0', 'pycocotools'],
        'seg': ['mmsegmentation>=1.0.0,<1.3.0', 'ftfy', 'regex'],
        'cls': ['mmpretrain>=1.0.0,<1.3.0'],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'License :: OSI Approved :: Apache Software License',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)

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
    # torch 2.1's and mmdet 3.3's floor; every version is tested (docs/get_started.md, Tested environments:
    # tools/setup_env.sh legacy on 3.8, onedl on 3.10, pinned on 3.11, newest on 3.13).
    python_requires='>=3.8',
    packages=find_packages(include=['convmlp_mm', 'convmlp_mm.*']),
    # OpenMMLab's layout, which mim reads: convmlp_mm/.mim/ holds links to the clone's configs/, model-index.yml and
    # tools/ (committed, so that a clone and a `setup.py develop` install have them as mmdet's develop mode makes
    # them); a wheel or sdist carries copies of the files. model-index.yml imports configs/*/metafile.yml, and
    # `mim train`/`mim test` run .mim/tools/train.py and test.py. One pattern per folder depth: setuptools < 62.3
    # (Python 3.8's venvs come with 56) does not expand `**`.
    package_data={'convmlp_mm': ['.mim/model-index.yml', '.mim/tools/*.py'] + [
        f'.mim/configs/{"*/" * depth}*.{ext}' for depth in range(6) for ext in ('py', 'yml')]},
    # As mmdet does, torch, mmcv and mmengine are not forced: the OneDL fork provides the same modules under
    # other distribution names (onedl-mmcv, onedl-mmengine), which pip would not see and would overwrite.
    # `import convmlp_mm` checks them (convmlp_mm/compat.py: torch>=2.1, mmengine>=0.10, mmcv>=2.0).
    install_requires=['numpy'],
    extras_require={
        'det': ['mmdet>=3.0.0,<3.4.0', 'pycocotools'],
        'seg': ['mmsegmentation>=1.0.0,<1.3.0', 'ftfy', 'regex'],
        'cls': ['mmpretrain>=1.0.0,<1.3.0'],
    },
    classifiers=[
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.8',
        'Programming Language :: Python :: 3.9',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
        'Programming Language :: Python :: 3.13',
        'License :: OSI Approved :: Apache Software License',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)

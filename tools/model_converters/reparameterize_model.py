"""Write a checkpoint with the ConvMLP backbone in its deployed (re-parameterised) structure.

    python tools/model_converters/reparameterize_model.py CONFIG CHECKPOINT OUT

CHECKPOINT is a model trained with CONFIG (a detector, segmentor or classifier with a ConvMLP backbone);
OUT holds the same model with the conv parts' BatchNorms folded into conv-ReLU layers and the LayerNorm
affines folded into the channel MLPs (``ConvMLP.switch_to_deploy()``). Test or run it with the deploy config
(``configs/<task>/deploy/<name>_deploy.py``: the same config with ``model.backbone.deploy=True``), e.g.
``python tools/test.py configs/detection/deploy/retinanet_convmlp_s_fpn_deploy.py OUT``.
"""
import argparse

from convmlp_mm.apis import deploy_config_of, reparameterize
from convmlp_mm.utils.cli import run_main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='the config CHECKPOINT was trained with')
    parser.add_argument('checkpoint', help='the trained checkpoint (path or URL)')
    parser.add_argument('out', help='where to write the deployed checkpoint')
    args = parser.parse_args()
    out = reparameterize(args.config, args.checkpoint, args.out)
    deploy_config = deploy_config_of(args.config)
    command = (f'python tools/test.py {deploy_config} {out}' if deploy_config else
               f'python tools/test.py {args.config} {out} --cfg-options model.backbone.deploy=True')
    print(f'wrote {out}: the deployed form of {args.checkpoint}\ntest it with: {command}')

if __name__ == '__main__':
    run_main(main)

"""The zebra/elephant example of the SGLRP paper with Keras VGG16 (ImageNet weights).

    python examples/zebra_elephant.py [--weights PATH] [--out results/zebra_elephant]

Same as ``sglrp demo --model vgg16``. Without the weights in the Keras cache and without
network it stops and says how to get them.
"""

import argparse
import sys

from sglrp.demo.zebra_elephant import run_example

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="imagenet", help="'imagenet' or a weights file")
    parser.add_argument("--out", default="results/zebra_elephant")
    args = parser.parse_args()
    sys.exit(run_example(args.out, weights=args.weights))

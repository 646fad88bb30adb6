"""Zoobot 2.9's representations example in its 2.9 form, on the shared rings.

Reconstructed in Zoobot 2.9's form from Zoobot's example (its 2.9.0 text is in neither the wheel
nor the sdist, so it could not be fetched here): the same imports, classes and calls.

``python get_representations.py RINGS_FOLDER SAVE_DIR ZOOBOT_TREE_CHECKPOINT``.
"""

import logging
import os
import sys

import pandas as pd
from galaxy_datasets.transforms import get_galaxy_transform, minimal_view_config

from zoobot.pytorch.estimators import define_model
from zoobot.pytorch.predictions import predict_on_catalog
from zoobot.pytorch.training import representations
from zoobot.shared import load_predictions


def main(catalog, checkpoint_loc, save_dir):
    assert all([os.path.isfile(x) for x in catalog["file_loc"]])
    if not os.path.exists(save_dir):
        os.mkdir(save_dir)

    encoder = define_model.ZoobotTree.load_from_checkpoint(checkpoint_loc).encoder
    model = representations.ZoobotEncoder(encoder=encoder)

    label_cols = [f"feat_{n}" for n in range(define_model.get_encoder_dim(encoder))]
    save_loc = os.path.join(save_dir, "representations.hdf5")

    cfg = minimal_view_config()
    cfg.output_size = 32
    predict_on_catalog.predict(
        catalog,
        model,
        label_cols=label_cols,
        save_loc=save_loc,
        inference_transform=get_galaxy_transform(cfg),
        datamodule_kwargs={"batch_size": 8},
        trainer_kwargs={"devices": 1, "accelerator": "cpu"},
    )
    return save_loc


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    data_dir, save_dir, checkpoint_loc = sys.argv[1], sys.argv[2], sys.argv[3]
    catalog = pd.read_csv(os.path.join(data_dir, "catalog.csv"))[:16]
    catalog["file_loc"] = [os.path.join(data_dir, loc) for loc in catalog["file_loc"]]
    representations_loc = main(catalog, checkpoint_loc, save_dir)
    rep_df = load_predictions.single_forward_pass_hdf5s_to_df(representations_loc)
    print(rep_df.shape)

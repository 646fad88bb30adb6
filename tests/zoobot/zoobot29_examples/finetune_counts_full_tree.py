"""Zoobot 2.9's finetune_counts_full_tree example in its 2.9 form, on the shared rings.

Reconstructed in Zoobot 2.9's form from Zoobot's example (its 2.9.0 text is in neither the wheel
nor the sdist, so it could not be fetched here): the same imports, classes and calls.

The rings catalogue has vote fractions for three questions; counts out of 40 are made from them
under Zoobot 2.9's column names. ``python finetune_counts_full_tree.py RINGS_FOLDER SAVE_DIR``.
"""

import logging
import os
import sys

import numpy as np
import pandas as pd
from galaxy_datasets.pytorch.galaxy_datamodule import CatalogDataModule
from galaxy_datasets.transforms import get_galaxy_transform, minimal_view_config

from zoobot.pytorch.predictions import predict_on_catalog
from zoobot.pytorch.training import finetune
from zoobot.shared import schemas
from zoobot.shared.load_predictions import load_hdf5s

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    data_dir, save_dir = sys.argv[1], sys.argv[2]

    schema = schemas.Schema(
        question_answer_pairs={
            "smooth-or-featured-dr5": ["_featured-or-disk", "_other"],
            "disk-edge-on-dr5": ["_no", "_yes"],
        },
        dependencies={
            "smooth-or-featured-dr5": None,
            "disk-edge-on-dr5": "smooth-or-featured-dr5_featured-or-disk",
        },
    )
    catalog = pd.read_csv(os.path.join(data_dir, "catalog.csv"))[:32]
    catalog["file_loc"] = [os.path.join(data_dir, loc) for loc in catalog["file_loc"]]
    featured = np.round(40 * catalog["smooth-or-featured_featured-or-disk_fraction"])
    face_on = np.round(featured * catalog["disk-edge-on_no_fraction"])
    catalog["smooth-or-featured-dr5_featured-or-disk"] = featured
    catalog["smooth-or-featured-dr5_other"] = 40 - featured
    catalog["disk-edge-on-dr5_no"] = face_on
    catalog["disk-edge-on-dr5_yes"] = featured - face_on

    cfg = minimal_view_config()
    cfg.output_size = 32
    transform = get_galaxy_transform(cfg)
    datamodule = CatalogDataModule(
        label_cols=schema.label_cols,
        train_catalog=catalog[:16],
        val_catalog=catalog[16:24],
        test_catalog=catalog[24:],
        batch_size=8,
        train_transform=transform,
        test_transform=transform,
        num_workers=0,
    )

    model = finetune.FinetuneableZoobotTree(
        name="hf_hub:mwalmsley/zoobot-encoder-convnext_nano", schema=schema
    )
    trainer = finetune.get_trainer(save_dir=save_dir, accelerator="cpu", max_epochs=1)
    trainer.fit(model, datamodule)

    hdf5_loc = os.path.join(save_dir, "test_predictions.hdf5")
    predict_on_catalog.predict(
        catalog[24:],
        model,
        label_cols=schema.label_cols,
        save_loc=hdf5_loc,
        inference_transform=transform,
        datamodule_kwargs={"batch_size": 8},
        trainer_kwargs={"devices": 1, "accelerator": "cpu"},
    )
    galaxies, concentrations, label_cols = load_hdf5s(hdf5_loc)
    print(len(galaxies), concentrations.shape, label_cols)

"""Zoobot 2.9's finetune_counts_single_question example in its 2.9 form, on the shared rings.

Reconstructed in Zoobot 2.9's form from Zoobot's example, which finetunes a FinetuneableZoobotTree
on GZ Rings' ``ring_yes``/``ring_no`` vote counts (``gz_rings_schema``). The shared rings catalogue
has no ring vote counts, only vote fractions, so the one question here is smooth-or-featured:
counts out of 40 volunteers are made from ``smooth-or-featured_featured-or-disk_fraction``.
``python finetune_counts_single_question.py RINGS_FOLDER SAVE_DIR``.
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

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    data_dir, save_dir = sys.argv[1], sys.argv[2]

    schema = schemas.Schema(
        question_answer_pairs={"smooth-or-featured-dr5": ["_featured-or-disk", "_other"]},
        dependencies={"smooth-or-featured-dr5": None},
    )
    catalog = pd.read_csv(os.path.join(data_dir, "catalog.csv")).sample(32, random_state=0)
    catalog["file_loc"] = [os.path.join(data_dir, loc) for loc in catalog["file_loc"]]
    featured = np.round(40 * catalog["smooth-or-featured_featured-or-disk_fraction"])
    catalog["smooth-or-featured-dr5_featured-or-disk"] = featured
    catalog["smooth-or-featured-dr5_other"] = 40 - featured

    cfg = minimal_view_config()
    cfg.output_size = 32
    transform = get_galaxy_transform(cfg)
    datamodule = CatalogDataModule(
        label_cols=schema.label_cols,
        catalog=catalog[:24],
        batch_size=8,
        train_transform=transform,
        test_transform=transform,
        num_workers=0,
    )

    model = finetune.FinetuneableZoobotTree(
        name="hf_hub:mwalmsley/zoobot-encoder-convnext_nano",
        schema=schema,
        training_mode="head_only",
    )
    trainer = finetune.get_trainer(save_dir, accelerator="cpu", max_epochs=1, limit_train_batches=2)
    trainer.fit(model, datamodule)

    test_catalog = catalog[24:]
    predict_on_catalog.predict(
        test_catalog,
        model,
        label_cols=schema.label_cols,
        save_loc=os.path.join(save_dir, "test_predictions.csv"),
        inference_transform=transform,
        datamodule_kwargs={"batch_size": 8},
        trainer_kwargs={"devices": 1, "accelerator": "cpu"},
    )

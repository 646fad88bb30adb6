"""Zoobot 2.9's finetune_multiclass_classification example in its 2.9 form, on the shared rings.

Reconstructed in Zoobot 2.9's form from Zoobot's example (which gives the rings random labels 0-2).
Here the three classes come from the catalogue: 2 for a ring (``ring == 1``); for the non-rings,
1 where ``smooth-or-featured_featured-or-disk_fraction`` is above the non-rings' median, else 0.
Only the data location is an argument:
``python finetune_multiclass_classification.py RINGS_FOLDER SAVE_DIR``.
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

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    data_dir, save_dir = sys.argv[1], sys.argv[2]

    catalog = pd.read_csv(os.path.join(data_dir, "catalog.csv"))
    catalog["file_loc"] = [os.path.join(data_dir, loc) for loc in catalog["file_loc"]]
    featured = catalog["smooth-or-featured_featured-or-disk_fraction"]
    median_featured = featured[catalog["ring"] == 0].median()
    catalog["morphology"] = np.where(
        catalog["ring"] == 1, 2, (featured > median_featured).astype(int)
    )
    catalog = catalog.sample(32, random_state=0)
    train_catalog, test_catalog = catalog[:24], catalog[24:]
    label_cols = ["morphology"]

    cfg = minimal_view_config()
    cfg.output_size = 32
    transform = get_galaxy_transform(cfg)
    datamodule = CatalogDataModule(
        label_cols=label_cols,
        catalog=train_catalog,
        batch_size=8,
        train_transform=transform,
        test_transform=transform,
        num_workers=0,
    )

    model = finetune.FinetuneableZoobotClassifier(
        name="hf_hub:mwalmsley/zoobot-encoder-convnext_nano",
        num_classes=3,
        label_col="morphology",
        training_mode="head_only",
    )

    trainer = finetune.get_trainer(save_dir, accelerator="cpu", max_epochs=1, limit_train_batches=2)
    trainer.fit(model, datamodule)

    best_checkpoint = trainer.checkpoint_callback.best_model_path
    finetuned_model = finetune.FinetuneableZoobotClassifier.load_from_checkpoint(best_checkpoint)

    predict_on_catalog.predict(
        test_catalog,
        finetuned_model,
        label_cols=["smooth_no_ring", "featured_no_ring", "ring"],
        save_loc=os.path.join(save_dir, "finetuned_predictions.csv"),
        inference_transform=transform,
        trainer_kwargs={"accelerator": "cpu"},
    )

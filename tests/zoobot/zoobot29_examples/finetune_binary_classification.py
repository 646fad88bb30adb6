"""Zoobot 2.9's finetune_binary_classification example in its 2.9 form, on the shared rings.

Reconstructed in Zoobot 2.9's form from Zoobot's example (its 2.9.0 text is in neither the wheel
nor the sdist, so it could not be fetched here): the same imports, classes and calls.

Only the data location is an argument (the original hard-codes a download folder):
``python finetune_binary_classification.py RINGS_FOLDER SAVE_DIR``.
"""

import logging
import os
import sys

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
    train_catalog, test_catalog = catalog[:24], catalog[24:32]
    label_cols = ["ring"]

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
        num_classes=2,
        label_col="ring",
        training_mode="head_only",
    )

    trainer = finetune.get_trainer(save_dir, accelerator="cpu", max_epochs=1, limit_train_batches=2)
    trainer.fit(model, datamodule)

    best_checkpoint = trainer.checkpoint_callback.best_model_path
    finetuned_model = finetune.FinetuneableZoobotClassifier.load_from_checkpoint(best_checkpoint)

    predict_on_catalog.predict(
        test_catalog,
        finetuned_model,
        label_cols=["not_ring", "ring"],
        save_loc=os.path.join(save_dir, "finetuned_predictions.csv"),
        inference_transform=transform,
        trainer_kwargs={"accelerator": "cpu"},
    )

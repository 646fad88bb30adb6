"""panoptes_sync."""

"""Zoobot 2.x's ``zoobot.shared.load_predictions`` (compatibility; HDF5 needs h5py)."""

from zoobot.zoobot2.predictions import load_hdf5s, single_forward_pass_hdf5s_to_df

__all__ = ["load_hdf5s", "single_forward_pass_hdf5s_to_df"]

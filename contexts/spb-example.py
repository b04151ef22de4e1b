"""An example Python context file for an SPB/SFX-like beamtime (DAMNIT's API, damnit_ctx), with the same variables
as contexts/spb-example.ts; it matches the synthetic runs of `damnit synth` and `damnit demo --python`. Copy it to
your database directory as `context.py` (and set `context_python` to an interpreter with numpy and extra_data).
"""
import numpy as np
import xarray as xr

from damnit_ctx import Cell, Skip, Variable

XGM = "SPB_XTD9_XGM/DOOCS/MAIN"
XGM_OUTPUT = "SPB_XTD9_XGM/DOOCS/MAIN:output"
SAMPLE_X = "SPB_IRU_MOTORS/MOTOR/SAMPLE_X"
CAMERA = "SPB_EXP_ZYLA/CAM/1:output"
AGIPD_MODULE_0 = "SPB_DET_AGIPD1M-1/DET/0CH0:xtdf"
CORRECTED_MODULE_0 = "SPB_DET_AGIPD1M-1/CORR/0CH0:output"
XGM_PULSES = 30


@Variable(title="Trains", tags=["run"])
def n_trains(run):
    """Number of trains recorded in the run"""
    return len(run.train_ids)


@Variable(transient=True)
def xgm_pulses(run):
    """Pulse energy of every pulse of every train (used by the XGM variables, not stored)"""
    return run[XGM_OUTPUT, "data.intensityTD"].xarray()


@Variable(title="XGM/intensity", units="µJ", tags=["xgm"])
def xgm_intensity(run, pulses: "var#xgm_pulses"):
    """Mean pulse energy per train, from the XGM's pulse-resolved channel"""
    return pulses[:, :XGM_PULSES].mean(axis=1).astype(np.float64)


@Variable(title="XGM/mean", units="µJ", tags=["xgm"])
def xgm_mean(run, intensity: "var#xgm_intensity"):
    """Mean pulse energy of the run"""
    return float(np.nanmean(intensity.values))


@Variable(title="XGM/photon flux", units="µJ", summary="mean", tags=["xgm"])
def photon_flux(run):
    """Photon flux reported by the XGM's control device, averaged over the run"""
    return run[XGM, "pulseEnergy.photonFlux.value"].xarray()


@Variable(title="Sample/x", units="mm", summary="mean", tags=["motors"])
def sample_x(run):
    """Sample position during the run (the cell shows its mean)"""
    return run[SAMPLE_X, "actualPosition.value"].xarray()


@Variable(transient=True)
def camera_frames(run):
    """The camera's images (read once, used by the camera variables, not stored)"""
    return run[CAMERA, "data.image.pixels"].xarray()


@Variable(title="Camera/total", summary="mean", tags=["camera"])
def camera_total(run, frames: "var#camera_frames"):
    """Total camera counts per train with an image; the cell shows the mean"""
    return frames.astype(np.float64).sum(axis=(1, 2))


@Variable(title="Camera/mean image", tags=["camera"])
def camera_image(run, frames: "var#camera_frames"):
    """Mean camera image of the run (the cell shows a thumbnail)"""
    if frames.shape[0] == 0:
        raise Skip("the camera recorded no images in this run")
    return frames.values.astype(np.float64).mean(axis=0)


@Variable(title="AGIPD/module 0 mean frame", tags=["detector"])
def agipd_mean_frame(run):
    """Mean signal frame of AGIPD module 0 over all frames of the run (raw frames: signal plane only)"""
    key = run[AGIPD_MODULE_0, "image.data"]
    if key.shape[0] == 0:
        raise Skip("AGIPD module 0 recorded no frames")
    total = None
    for chunk in key.split_trains(trains_per_part=16):
        data = chunk.ndarray()
        if data.ndim == 4:
            data = data[:, 0]
        part = data.astype(np.float64).sum(axis=0)
        total = part if total is None else total + part
    return total / key.shape[0]


@Variable(title="AGIPD/module 0 corrected mean", data="proc", units="keV", tags=["detector"])
def agipd_corrected_mean(run):
    """Mean corrected signal of AGIPD module 0 (computed when the run is calibrated)"""
    data = run[CORRECTED_MODULE_0, "image.data"].ndarray()
    return None if data.size == 0 else float(data.mean())


@Variable(title="Beam/OK", tags=["xgm"])
def beam_ok(run, xgm: "var#xgm_mean"):
    """Whether the beam was good enough for the run: a coloured cell"""
    good = xgm > 20
    return Cell(good, summary_value="good" if good else "low", bold=not good,
                background="#8fd18f" if good else "#f5b971")


@Variable(title="Beam/SASE1 flux", units="µJ", tags=["xgm"])
def sase1_flux(run):
    """SASE1 pulse energy: this beamline does not record the SASE1 XGM, so this fails with a clear message"""
    return run["SA1_XTD2_XGM/XGM/DOOCS", "pulseEnergy.photonFlux.value"].xarray()


@Variable(title="Beam/SPB to SASE1")
def sase1_ratio(run, ours: "var#xgm_mean", sase1: "var#sase1_flux"):
    """Ratio of our pulse energy to SASE1's (skipped, since SASE1 fails: see the error tree)"""
    return ours / float(np.nanmean(sase1.values))

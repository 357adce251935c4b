"""Structure QA images: the contour pixels fall where the RTSTRUCT says.

Reference: the RTSTRUCT written for the demo targets, read back with read_rtstruct. Each
vertex of the lesion's GTV/CTV/PTV polygons on the axial panel's slice is mapped through
matplotlib's own data -> pixel transform of that panel; the pixel of the saved PNG there
must have the ROI's display colour. The demo lesion centres are known (rtplan.demo).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.image import imread

from rtplan.demo import write_demo_inputs
from rtplan.errors import InputError, OutputExistsError
from rtplan.imaging import load_ct_series
from rtplan.structures import read_rtstruct, write_rtstruct
from rtplan.structures.qa import structure_qa_figures, write_structure_qa
from rtplan.structures.spec import load_lesions_file
from rtplan.structures.targets import build_targets, targets_to_rois

#: demo lesion L1 (rtplan.demo.DEMO_LESIONS): centre LPS mm, its ROIs
L1_CENTRE_MM = (62.3, 12.4, 21.1)
L1_ROIS = ("GTVn1", "CTVn1", "PTVn1")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("qa")
    paths = write_demo_inputs(root / "in", with_pet=False)
    ct = load_ct_series(paths["ct"])
    targets = build_targets(load_lesions_file(paths["lesions"]), ct)
    rs = write_rtstruct(root / "RS.dcm", ct, targets_to_rois(targets))
    return root, ct, targets, read_rtstruct(rs)


def _pixel_rgb(img, ax, x_mm, y_mm):
    px, py = ax.transData.transform((x_mm, y_mm))
    row = int(np.floor(img.shape[0] - py))
    col = int(np.floor(px))
    return img[row, col, :3]


def test_contour_pixels_fall_where_the_rtstruct_says(demo, tmp_path):
    _, ct, _, ss = demo
    fig = structure_qa_figures(ct, ss, lesions=["GTVn1"])["GTVn1"]
    png = tmp_path / "qa.png"
    fig.savefig(png, format="png")  # lays the figure out; transData is final after it
    img = imread(png)
    axial = fig.axes[0]
    z = float(re.search(r"z = (-?[\d.]+) mm", axial.get_title()).group(1))
    # the panel goes through the lesion: within one slice of the sphere centre
    assert abs(z - L1_CENTRE_MM[2]) <= ct.grid.spacing_mm[0] + 1e-6
    n_checked = 0
    for name in L1_ROIS:
        roi = ss.roi(name)
        want = np.array(roi.color) / 255.0
        polys = [p for p in roi.polygons_mm if abs(p[0, 2] - z) < 1e-3]
        assert polys, name
        hits = [np.abs(_pixel_rgb(img, axial, x, y) - want).max() <= 2 / 255
                for p in polys for x, y, _ in p]
        n_checked += len(hits)
        assert np.mean(hits) >= 0.98, (name, np.mean(hits))
        # control: 3 mm outward of the first vertex (away from the centre) is not the ROI
        v = polys[0][0, :2]
        out = v + 3.0 * (v - L1_CENTRE_MM[:2]) / np.linalg.norm(v - L1_CENTRE_MM[:2])
        assert np.abs(_pixel_rgb(img, axial, *out) - want).max() > 2 / 255, name
    assert n_checked > 30
    # the GTV centre shows CT (grey), not a contour colour
    centre = _pixel_rgb(img, axial, *L1_CENTRE_MM[:2])
    assert np.ptp(centre) < 1e-6


def test_figure_has_three_views_legend_and_scale_bar(demo):
    _, ct, targets, _ = demo
    fig = structure_qa_figures(ct, targets, lesions=["GTVn1"])["GTVn1"]
    titles = [ax.get_title().split(",")[0] for ax in fig.axes]
    assert titles == ["axial", "coronal", "sagittal"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[0] == "GTVn1 (GTV)" and "CTVn1 (CTV)" in legend and "PTVn1 (PTV)" in legend
    for ax in fig.axes:
        texts = [t.get_text() for t in ax.texts]
        assert "20 mm" in texts
        # the scale bar is 20 mm long in data units (mm)
        bar = [ln for ln in ax.get_lines() if ln.get_color() == "white"]
        assert len(bar) == 1 and np.ptp(bar[0].get_xdata()) == pytest.approx(20.0)
        assert ax.get_aspect() == 1.0
    axial_letters = {t.get_text() for t in fig.axes[0].texts}
    assert {"A", "P", "R", "L"} <= axial_letters
    assert "W400/L40" in fig._suptitle.get_text()


def test_write_structure_qa_files_and_overview(demo, tmp_path):
    _, ct, targets, _ = demo
    out = tmp_path / "qa"
    paths = write_structure_qa(ct, targets, out)
    names = [p.name for p in paths]
    assert names == ["qa_GTVn1.png", "qa_GTVn2.png", "qa_GTV1_Bone.png", "qa_GTVsb1.png",
                     "index.html"]
    for p in paths[:-1]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "index.html").read_text()
    assert all(f'src="{n}"' in page for n in names[:-1])
    with pytest.raises(OutputExistsError):
        write_structure_qa(ct, targets, out, lesions=["GTVn1"])
    assert write_structure_qa(ct, targets, out, lesions=["GTVn1"], overwrite=True)


def test_unknown_lesion_is_an_input_error(demo):
    _, ct, targets, _ = demo
    with pytest.raises(InputError, match="GTVx"):
        structure_qa_figures(ct, targets, lesions=["GTVx"])


def _window(hu):
    """Grey level 0-1 of W400/L40 (the reference mapping, written out)."""
    return np.clip((np.asarray(hu, dtype=float) - (40 - 200)) / 400, 0, 1)


@pytest.fixture(scope="module")
def bone_figure(demo):
    root, ct, _, ss = demo
    fig = structure_qa_figures(ct, ss, lesions=["GTV1_Bone"], fov_mm=250)["GTV1_Bone"]
    png = root / "qa_bone.png"
    fig.savefig(png, format="png")
    return fig, imread(png)


@pytest.mark.parametrize("view", ["axial", "coronal", "sagittal"])
def test_ct_pixels_placed_at_their_patient_coordinates(demo, bone_figure, view):
    _, ct, _, _ = demo
    fig, img = bone_figure
    i = ["axial", "coronal", "sagittal"].index(view)
    ax = fig.axes[i]
    value = float(re.search(r"= (-?[\d.]+) mm", ax.get_title()).group(1))
    g = ct.grid
    hu = np.asarray(ct.volume_hu, dtype=float)
    axis = {"axial": 2, "coronal": 1, "sagittal": 0}[view]  # fixed patient axis
    grid_axis = {"axial": 0, "coronal": 1, "sagittal": 2}[view]
    probe = np.zeros(3)
    probe[axis] = value
    fixed = round(float(g.world_to_index(probe)[grid_axis]))
    x0, x1 = sorted(ax.get_xlim())
    y0, y1 = sorted(ax.get_ylim())
    rng = np.random.default_rng(0)
    checked = 0
    seen_hu = set()
    for _ in range(4000):
        idx = [int(rng.integers(0, n)) for n in g.shape]
        idx[grid_axis] = fixed
        w = g.index_to_world(np.array(idx, dtype=float))
        u, v = {"axial": (w[0], w[1]), "coronal": (w[0], w[2]),
                "sagittal": (w[1], w[2])}[view]
        if not (x0 + 5 < u < x1 - 5 and y0 + 5 < v < y1 - 5):
            continue
        fx, fy = ax.transAxes.inverted().transform(ax.transData.transform((u, v)))
        if not (0.1 < fx < 0.9 and 0.25 < fy < 0.9):  # orientation letters, scale bar
            continue
        k, r, c = idx
        block = hu[max(k - 1, 0):k + 2, max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        if np.ptp(block) > 0:  # only voxels inside uniform regions (no edge blending)
            continue
        rgb = _pixel_rgb(img, ax, u, v)
        if np.ptp(rgb) > 1e-6:  # a contour line or a letter is drawn there
            continue
        assert rgb[0] == pytest.approx(float(_window(hu[k, r, c])), abs=1.5 / 255), (idx, u, v)
        checked += 1
        seen_hu.add(float(hu[k, r, c]))
        if checked >= 80 and len(seen_hu) >= 2:
            break
    assert checked >= 20 and len(seen_hu) >= 2, (checked, seen_hu)

"""report.html of `bench audit`: one self-contained page that opens from disk (no network, no external file).

Top: the settings, and with --inject the detection table. Then the top N cases (the review budget), each as three
PNG panels inline (base64 data URIs, drawn with Pillow): the image with the GIVEN label's contours, the same with
the HELD-OUT model's predicted contours, and the given contours with the disputed pixels marked in magenta (where
the held-out model gives another class than the label a probability above the gate, 0.9: the pixels a proposed
label may change). Last: every case in a table, sortable by any column (a small inline script; click a header).
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from bench.audit_output import nearest_exact
from bench.plots import contour_panel, legend

if TYPE_CHECKING:
    from bench.audit_run import Audit

#: side of one panel in the report, pixels
SIDE = 192
DISPUTED = (255, 0, 255)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
pre{background:#eee;padding:.6em;white-space:pre-wrap}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#e4e4e4;cursor:pointer;position:sticky;top:0}
td.t,th.t{text-align:left}
tr.flag td{background:#fff3d6}
.case{display:inline-block;width:600px;margin:0 1em 1.2em 0;vertical-align:top;font-size:13px}
.case img{margin-right:4px;image-rendering:pixelated}
"""

_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var up = th.dataset.dir !== 'asc';
    th.dataset.dir = up ? 'asc' : 'desc';
    rows.sort(function(a, b){
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return up ? c : -c;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
"""


def png_data_uri(rgb: np.ndarray) -> str:
    """A `data:image/png;base64,...` URI of an (H, W, 3) uint8 picture."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def disputed_pixels(given: np.ndarray, probs: torch.Tensor, threshold: float) -> np.ndarray:
    """Bool (K, H, W): pixels where the held-out model gives a class other than the given label a probability > threshold."""
    others = probs.scatter(1, torch.from_numpy(given.astype(np.int64)).unsqueeze(1), -1.0)
    return (others.max(1).values > threshold).numpy()


def case_panels(image: np.ndarray, given: np.ndarray, pred: np.ndarray, disputed: np.ndarray, label_set: Any) -> list[np.ndarray]:
    """The three RGB panels of one case: given contours, predicted contours, given contours with disputed pixels."""
    left = np.asarray(contour_panel(image, given, SIDE, label_set))
    middle = np.asarray(contour_panel(image, pred, SIDE, label_set))
    right = left.copy()
    mark = nearest_exact(disputed, (SIDE, SIDE))
    right[mark] = (0.45 * right[mark] + 0.55 * np.array(DISPUTED)).astype(np.uint8)
    return [left, middle, right]


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    return html.escape(str(value))


def _case_table(audit: Audit) -> str:
    frame = audit.table
    text_cols = {"case", "patient", "most_in_doubt", "proposed"}
    head = "".join(f'<th class="{"t" if c in text_cols else ""}">{html.escape(c)}</th>' for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        values = dict(zip(frame.columns, record, strict=True))
        cells = "".join(f'<td class="{"t" if c in text_cols else ""}">{_cell(v)}</td>' for c, v in values.items())
        rows.append(f'<tr class="{"flag" if values["flagged"] else ""}" data-case="{html.escape(str(values["case"]))}">{cells}</tr>')
    return f'<table class="sortable" id="cases"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _inject_table(audit: Audit) -> str:
    inject = audit.summary.get("inject")
    if not inject:
        return ""
    head = "<tr><th class='t'>detector</th><th>precision@N</th><th>recall@N</th><th>AUROC</th><th>AP</th></tr>"
    body = "".join(
        f"<tr><td class='t'>{html.escape(name)}</td>"
        + "".join(
            f"<td>{_cell(d[k]) if d[k] is not None else '-'}</td>" for k in ("precision_at_budget", "recall_at_budget", "auroc", "ap")
        )
        + "</tr>"
        for name, d in inject["detection"].items()
    )
    note = (
        f"<p>Injected <b>{html.escape(inject['spec'])}</b> (seed {inject['seed']}): {inject['n_corrupted']} of {len(audit.data)} "
        f"labels corrupted (mean label Dice {inject['mean_label_dice']:.3f}); N = {audit.settings.top} (--top). AP's chance "
        f"level is the corrupted share, {inject['n_corrupted'] / len(audit.data):.2f}.</p>"
    )
    return f"<h2>Detection of the injected errors</h2>{note}<table>{head}{body}</table>"


def render_report(audit: Audit) -> str:
    """The whole report page as one HTML string."""
    from bench.audit import settings_text

    data, settings = audit.data, audit.settings
    top = audit.table[audit.table["flagged"]]
    position = {case: i for i, case in enumerate(data.ids)}
    index = np.array([position[c] for c in top["case"]], dtype=np.int64)
    probs = audit.probs[torch.from_numpy(index)]
    pred = probs.argmax(1).numpy().astype(np.uint8)
    disputed = disputed_pixels(audit.given[index], probs, settings.threshold)
    cards = []
    for j, row in enumerate(top.itertuples(index=False)):
        i = index[j]
        panels = case_panels(data.images[i], audit.given[i], pred[j], disputed[j], data.label_set)
        imgs = "".join(
            f'<img alt="{alt} {html.escape(row.case)}" src="{png_data_uri(p)}">'
            for alt, p in zip(("given", "predicted", "disputed"), panels, strict=True)
        )
        scores = ", ".join(f"{name} {getattr(row, 'score_' + name):.3g}" for name in settings.detectors)
        doubt = f"; most in doubt: {html.escape(row.most_in_doubt)}" if row.most_in_doubt else ""
        cards.append(
            f'<div class="case" id="case-{html.escape(row.case)}"><div>{imgs}</div><b>#{row.rank} {html.escape(row.case)}</b> '
            f"(patient {html.escape(str(row.patient))}, fold {row.fold}): ensemble {row.ensemble:.3f}; {scores}{doubt}; "
            f"proposed: {html.escape(str(row.proposed))}</div>"
        )
    title = f"bench audit: {html.escape(data.name)}, {len(data)} cases"
    explain = (
        f"<p>Panels per case: the given label's contours; the held-out model's predicted contours; the given contours with "
        f"<span style='color:#c0c'>disputed pixels</span> (another class above p = {settings.threshold:g}). "
        f"Contours: {html.escape(legend(data.label_set))}. Every case was scored by a model that did not train on it.</p>"
    )
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1><pre>{html.escape(settings_text(settings, len(data), data.info['patient'].nunique()))}</pre>"
        f"{_inject_table(audit)}<h2>The {len(top)} cases to review first</h2>{explain}{''.join(cards)}"
        f"<h2>Every case ({len(data)}), sortable</h2>{_case_table(audit)}<script>{_SCRIPT}</script></body></html>\n"
    )

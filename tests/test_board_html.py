"""The HTML board the way a person sees it: its parts, its determinism, the index page, and (where Chromium exists) the rendered page.

The rendered-page tests run headless Chromium on the committed v1 board with a small check
script added, dump the DOM after scripts ran, and read what the check wrote: the page's
scroll width at a 1400 px window (it must not scroll sideways), which tab panel shows, and
the order of a column after a click on its header. They skip where /usr/bin/chromium is absent.
"""

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from bench import board_plots
from bench.board_html import find_boards, index_page
from bench.cli import main
from bench.leaderboard import board, load_records, render

ROOT = Path(__file__).resolve().parent.parent / "leaderboard"
V1 = ROOT / "phantom-quick" / "v1"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def v1_page() -> str:
    return render(board(load_records(V1)), "html")


def test_the_page_has_a_heatmap_tabs_and_matplotlib_figures(v1_page):
    page = v1_page
    heat = page[page.index('<table class="heat">') : page.index("</table>", page.index('<table class="heat">'))]
    assert heat.count("<tr") == 2 + 5 + 4  # 2 header rows, 4 methods and 1 reference (baseline has no row), 4 footer rows
    # v1's omission:0.75 seeds that lost a structure (a Dice below 0.5 in the raw records): vog-refurb seed 0, baseline seed 1
    assert "vog-refurb at omission:0.75: ΔDice" in heat and "lost a structure in 1 of 2 seeds (baseline: 1 of 2)" in heat
    foot = heat[heat.index("baseline&#x27;s seeds that lost a structure") :].split("</tr>")[0]
    assert re.findall(r"<td>([^<]+)</td>", foot) == ["0 of 2"] * 3 + ["1 of 2"] + ["0 of 2"] * 6  # none, omission 0.25-0.75, ...
    assert heat.count('<tr class="ref">') == 1 and "oracle-refurb" in heat
    assert "MDD (80% power)" in heat and "seeds for MDD ≤ 0.01" in heat
    assert [label for label in re.findall(r'<label for="g0-tab\d">([^<]+)</label>', page)] == [
        "Dice",
        "Detection",
        "Refurbishment",
        "Distance, clinical, cost",
        "Power",
    ]
    assert page.count('class="sortable"') == 4 * 4  # 4 tabs x (none, omission, random, systematic)
    assert page.count("<svg") == 4 and "Matplotlib" not in page  # no creator or date in the SVG metadata
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "element ids clash between figures"
    assert "AP chance" in page and "p Holm" in page


def test_the_page_regenerates_byte_for_byte_in_a_fresh_process(v1_page):
    code = "import sys; from bench.leaderboard import *; sys.stdout.write(render(board(load_records(sys.argv[1])), 'html'))"
    import os
    import sys

    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT.parent)}
    out = subprocess.run([sys.executable, "-c", code, str(V1)], capture_output=True, text=True, env=env, timeout=300, check=True)
    assert out.stdout == v1_page


def test_the_index_lists_every_board_with_links_that_resolve(tmp_path):
    for protocol, version in (("alpha", 1), ("alpha", 2), ("beta", 10)):
        folder = tmp_path / protocol / f"v{version}"
        folder.mkdir(parents=True)
        (folder / "board.html").write_text("<html></html>")
        if protocol == "alpha":
            (folder / "board.csv").write_text(
                "protocol,version,hash,method,noise,n,reference,spec_mdd\n"
                f"alpha,{version},h,baseline,none,3,False,0.02\nalpha,{version},h,oracle-refurb,none,3,True,0.02\n"
                f"alpha,{version},h,baseline,random:0.5,2,False,0.005\n"
            )
    (tmp_path / "alpha" / "notes").mkdir()  # not a version folder: not a board
    assert [p.relative_to(tmp_path).as_posix() for p in find_boards(tmp_path)] == [
        "alpha/v1/board.html",
        "alpha/v2/board.html",
        "beta/v10/board.html",
    ]
    out = tmp_path / "site" / "index.html"
    page = index_page(tmp_path, out)
    links = re.findall(r'href="([^"]+)"', page)
    assert links == [
        "../alpha/v1/board.html",
        "../alpha/v1/board.csv",
        "../alpha/v2/board.html",
        "../alpha/v2/board.csv",
        "../beta/v10/board.html",
    ]
    assert all((out.parent / link).resolve().is_file() for link in links)
    assert "2 recipes (1 reference), 2 noise specs, up to 3 seeds; MDD ≤ 0.01 at 1 of 2 specs" in page

    assert main(["leaderboard", str(tmp_path), "--index"]) == 0  # the CLI: PATH/index.html by default
    assert re.findall(r'href="([^"]+)"', (tmp_path / "index.html").read_text())[0] == "alpha/v1/board.html"


def test_the_committed_index_regenerates_byte_for_byte():
    assert (ROOT / "index.html").read_text() == index_page(ROOT, ROOT / "index.html")
    assert 'href="phantom-quick/v1/board.html"' in (ROOT / "index.html").read_text()


def test_no_two_methods_of_a_board_are_drawn_alike_and_each_keeps_its_look():
    """A full board has more methods than colours: colour and marker together tell every one apart, by name, not by order."""
    names = [f"method-{i:02d}" for i in range(len(board_plots.COLOURS) * 2 + 5)]
    look = board_plots.looks(names)
    assert len({(v.colour, v.marker) for v in look.values()}) == len(names)
    assert look == board_plots.looks(names[::-1])
    assert board_plots.looks(names[:3]) == {n: look[n] for n in names[:3]}  # a board's first methods keep their look


def test_a_board_of_one_noise_spec_still_shows_each_detection_chance_level(monkeypatch):
    """`bench run --noise systematic:0.5` gives one level: a chance line through one point draws nothing unless it has a mark.
    Each panel's chance must stand at its level as a visible mark: AUROC 0.5, AP and precision at the review budget the
    prevalence (v1 systematic:0.5: 120 of 240 training samples corrupted)."""
    records = [r for r in load_records(V1) if r.noise["spec"] == "systematic:0.5"]
    drawn = {}

    def keep(fig, name):  # the figure as drawn, instead of its SVG text
        drawn[name] = fig
        return ""

    monkeypatch.setattr(board_plots, "to_svg", keep)
    board_plots.detection_figure(board(records), "detection")
    lines = {ln.get_gid(): ln for ax in drawn["detection"].axes for ln in ax.get_lines() if ln.get_gid()}
    expected = {"det_auroc": 0.5, "det_ap": 120 / 240, "det_p_at_budget": 120 / 240}
    assert set(lines) == {f"chance-{col}-0" for col in expected}
    for col, level in expected.items():
        line = lines[f"chance-{col}-0"]
        assert list(line.get_xdata()) == [0.5] and list(line.get_ydata()) == pytest.approx([level])
        assert line.get_marker() not in (None, "", "None", " ") and line.get_markersize() > 0 and line.get_visible()
    plt.close(drawn["detection"])  # to_svg, which closes it, was not called


# ---------------------------------------------------------------- rendered in headless Chromium

_CHECK = """<script>
window.addEventListener("load", function () {
  var out = {};
  out.scrollWidth = document.documentElement.scrollWidth;
  out.panels = Array.prototype.map.call(document.querySelectorAll(".tabs > .panel"), function (p) {
    return getComputedStyle(p).display; }).join(",");
  var table = document.querySelector("table.sortable"), ths = table.querySelectorAll("thead th"), col = -1;
  ths.forEach(function (th, i) { if (th.textContent === "Dice mean") col = i; });
  ths[col].click();
  out.sorted = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[col].getAttribute("data-v"); }).join(",");
  out.figures = document.querySelectorAll("svg.plot").length;
  var pre = document.createElement("pre"); pre.id = "check"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(args: list[str], page: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    flags += ["--disable-sync", "--no-first-run", "--window-size=1400,900", f"--user-data-dir={tempfile.mkdtemp()}"]
    return subprocess.run([str(CHROMIUM), *flags, *args, page.as_uri()], capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium here (CI may install it)")
def test_in_chromium_the_page_fits_1400_px_shows_one_tab_and_sorts(tmp_path):
    import json

    text = (V1 / "board.html").read_text()
    page = tmp_path / "board.html"
    page.write_text(text.replace("</body>", _CHECK + "\n</body>"))
    done = _chromium(["--dump-dom"], page)
    found = re.search(r'<pre id="check">(.*?)</pre>', done.stdout)
    assert found, done.stderr[-2000:]
    check = json.loads(found.group(1).replace("&quot;", '"'))
    assert check["scrollWidth"] <= 1400  # no sideways scrolling on a laptop-sized window
    assert check["panels"].split(",") == ["block", "none", "none", "none", "none"]  # only the first tab shows
    values = [float(v) for v in check["sorted"].split(",") if v]
    assert values == sorted(values, reverse=True) and len(values) == 6  # first click: highest Dice first
    assert check["figures"] == 4
    for seen in ("Difference in mean Dice to baseline", "oracle-refurb", "MDD (80% power)", "Figures"):
        assert seen in done.stdout


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium here (CI may install it)")
def test_in_chromium_the_screenshot_is_the_window_and_not_blank(tmp_path):
    from PIL import Image

    shot = tmp_path / "board.png"
    page = tmp_path / "board.html"
    shutil.copy(V1 / "board.html", page)
    _chromium([f"--screenshot={shot}"], page)
    image = Image.open(shot).convert("L")
    assert image.size == (1400, 900)
    assert len(image.getcolors(256)) > 20  # text, table lines and heatmap colours, not an empty page


def test_the_cost_figure_has_one_readable_row_per_method_cheapest_first(monkeypatch):
    """20-odd methods in a scatter pile their labels up at (1, 0): each method gets its own row, named on the axis, rows in
    order of the cost the board's table gives, the same row in both panels, references hollow."""
    g = board(load_records(V1))
    drawn = {}
    monkeypatch.setattr(board_plots, "to_svg", lambda fig, name: drawn.setdefault(name, fig) and "")
    board_plots.cost_figure(g, "cost")
    left, right = drawn["cost"].axes
    names = [t.get_text() for t in left.get_yticklabels()]
    cost = g[g["cost_rel"].notna()].groupby("method")["cost_rel"].mean()
    assert sorted(names) == sorted(cost.index) and len(names) > 3
    assert [cost[n] for n in names] == sorted(cost[n] for n in names)
    for ax, what in ((left, "cost"), (right, "dice")):
        rows = {ln.get_gid(): ln for ln in ax.get_lines() if ln.get_gid()}
        for i, n in enumerate(names):
            assert list(rows[f"cost-{what}-{n}"].get_ydata()) == [i]
    refs = set(g.loc[g["reference"], "method"])
    for n in names:
        line = next(ln for ln in left.get_lines() if ln.get_gid() == f"cost-cost-{n}")
        assert (line.get_markerfacecolor() == "white") == (n in refs)
    plt.close(drawn["cost"])


def test_the_cost_figure_shows_work_where_the_records_count_it(monkeypatch):
    """MACs are the same on every machine: where the board has them (`work_rel`) the figure orders and places by them."""
    g = board(load_records(V1))
    order = sorted(g["method"].unique(), key=lambda m: -g.loc[g["method"] == m, "cost_rel"].mean())  # the reverse of by seconds
    g["work_rel"] = g["method"].map({m: 1.0 + i for i, m in enumerate(order)})
    drawn = {}
    monkeypatch.setattr(board_plots, "to_svg", lambda fig, name: drawn.setdefault(name, fig) and "")
    board_plots.cost_figure(g, "cost")
    left, _ = drawn["cost"].axes
    names = [t.get_text() for t in left.get_yticklabels()]
    assert names == [m for m in order if m in names] and len(names) > 3
    for i, n in enumerate(names):
        line = next(ln for ln in left.get_lines() if ln.get_gid() == f"cost-cost-{n}")
        assert list(line.get_xdata()) == [1.0 + order.index(n)] and list(line.get_ydata()) == [i]
    assert left.get_xlabel().startswith("work (multiply-accumulates) / baseline's")
    plt.close(drawn["cost"])

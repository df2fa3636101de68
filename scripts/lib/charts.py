"""PNG charts through gnuplot for scripts/lab.sh's report: panels of lines
with min-max error bars over a numeric x (K, connections, offered load), or
of grouped bars over categories (faults, working sets).

  plot(out, "memory", "title", [panel, ...])  ->  out/memory.png

A panel is a dict: title, xlabel, ylabel, kind ("lines" or "bars"),
logx (0 or a base), logy (bool), categories (bars: the x labels), hline
((y, label), optional) and series: [(label, [(x, y, lo, hi), ...])], with x
the category's index for bars and lo/hi None where there is no spread.
The data files and the gnuplot script stay in out/charts/, so a chart can
be redrawn by hand: `cd out/charts && gnuplot NAME.gp`.

What it doesn't do: choose what to plot (lab_report.py does).
"""

import math
import os
import shutil
import subprocess

COLOURS = {"process": "#1f77b4", "thread": "#ff7f0e", "thread-loops": "#2ca02c",
           "prefork": "#d62728"}
OTHERS = ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def q(text):
    """A gnuplot single-quoted string."""
    return "'" + str(text).replace("'", "''") + "'"


def num(v):
    return "NaN" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"


def colour(label, seen):
    for name, c in COLOURS.items():
        if label == name or label.startswith(name + " "):
            return c
    if label not in seen:
        seen[label] = OTHERS[len(seen) % len(OTHERS)]
    return seen[label]


def plot(out, name, title, panels, cols=2):
    """Draws out/NAME.png; returns its file name. Raises RuntimeError when
    gnuplot is missing or fails."""
    exe = shutil.which("gnuplot")
    if not exe:
        raise RuntimeError("gnuplot is not installed (apt-get install -y gnuplot-nox)")
    data_dir = os.path.join(out, "charts")
    os.makedirs(data_dir, exist_ok=True)
    cols = min(cols, len(panels))
    rows = (len(panels) + cols - 1) // cols
    seen = {}
    gp = [f"# {name}.png for scripts/lab.sh; redraw with: gnuplot {name}.gp",
          f"set terminal pngcairo size {560 * cols + 80},{330 * rows + 70} noenhanced "
          "font 'sans,10' background rgb 'white'",
          f"set output {q('../' + name + '.png')}",
          "set datafile missing 'NaN'",
          "set grid lc rgb '#dddddd'",
          "set style fill solid 0.8 border -1",
          f"set multiplot layout {rows},{cols} title {q(title)} font ',13'"]
    for i, p in enumerate(panels):
        gp += ["unset logscale", "unset arrow", "unset label", "set xtics autofreq",
               "set autoscale x", "set autoscale y", "set offsets 0, 0, 0, 0",
               "set key below horizontal font ',9' samplen 2",
               f"set title {q(p['title'])} font ',11'", f"set xlabel {q(p.get('xlabel', ''))}",
               f"set ylabel {q(p.get('ylabel', ''))}"]
        series = [(label, pts) for label, pts in p["series"] if any(pt[1] is not None for pt in pts)]
        if not series:
            gp += ["unset key", "set label 1 'not measured' at graph 0.5, graph 0.5 center",
                   "plot [0:1] [0:1] NaN notitle"]
            continue
        if p.get("logx"):
            gp.append(f"set logscale x {p['logx']}")
        if p.get("kind") != "bars":  # keep the end points off the frame
            gp.append("set offsets graph 0.04, graph 0.04, 0, 0")
        gp.append("set logscale y" if p.get("logy") else "set yrange [0:*]")
        if p.get("hline"):
            y, label = p["hline"]
            gp += [f"set arrow from graph 0, first {num(y)} to graph 1, first {num(y)} nohead "
                   "dashtype 2 lc rgb '#d62728' lw 1.5",
                   f"set label {q(label)} at graph 0.99, first {num(y)} right offset 0,0.6 "
                   "tc rgb '#d62728' font ',9'"]
        items = []
        n = len(series)
        if p.get("kind") == "bars":
            cats = p["categories"]
            width = 0.8 / n
            gp += ["set xtics (" + ", ".join(f"{q(c)} {j}" for j, c in enumerate(cats)) + ")",
                   f"set xrange [-0.6:{len(cats) - 0.4}]", f"set boxwidth {width:.4f}"]
        for j, (label, pts) in enumerate(series):
            path = f"{name}-p{i + 1}-s{j + 1}.dat"
            with open(os.path.join(data_dir, path), "w") as f:
                f.write(f"# {p['title']}: {label}\n# x y min max\n")
                for x, y, lo, hi in sorted(pts, key=lambda pt: pt[0]):
                    lo = y if lo is None else lo
                    hi = y if hi is None else hi
                    f.write(f"{num(x)} {num(y)} {num(lo)} {num(hi)}\n")
            c = colour(label, seen)
            if p.get("kind") == "bars":
                off = (j - (n - 1) / 2) * 0.8 / n
                items.append(f"{q(path)} using ($1+{off:.4f}):2 with boxes lc rgb '{c}' title {q(label)}")
                items.append(f"{q(path)} using ($1+{off:.4f}):2:3:4 with yerrorbars lc rgb '#333333' "
                             "pt 0 notitle")
            else:
                items.append(f"{q(path)} using 1:2:3:4 with yerrorlines lc rgb '{c}' lw 2 pt 7 "
                             f"ps 0.8 title {q(label)}")
        gp.append("plot " + ", \\\n     ".join(items))
    gp.append("unset multiplot")
    script = os.path.join(data_dir, name + ".gp")
    with open(script, "w") as f:
        f.write("\n".join(gp) + "\n")
    done = subprocess.run([exe, name + ".gp"], cwd=data_dir, capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"gnuplot {name}.gp failed: {done.stderr.strip()[-400:]}")
    return name + ".png"

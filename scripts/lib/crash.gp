# crash.gp: the chart of scripts/crash-compare.sh: throughput over time
# around each fault, one panel per fault, one line per architecture, the
# fault at t = 0. Written by crash_report.py; run by hand from a results
# directory with:
#
#   gnuplot -e "faults='abort segv hang leak'; modes='process thread'; \
#               term='svg'; outfile='timeline.svg'" scripts/lib/crash.gp
#
# Reads tl-FAULT-MODE.dat ("t_s req_s": the scoreboard's request counters
# differenced between samples taken every 100 ms) and tl-FAULT-MODE.marks
# (t_s of the first response from a replacement worker, drawn as a triangle
# on the time axis).

if (!exists("faults")) faults = 'abort segv hang leak'
if (!exists("modes")) modes = 'process thread'
if (!exists("term")) term = 'svg'
if (!exists("outfile")) outfile = 'timeline.svg'

n = words(faults)
cols = (n > 1) ? 2 : 1
rows = (n + 1) / 2
height = 120 + 330 * rows
if (term eq 'svg') {
    set terminal svg size 1200,height dynamic enhanced font 'sans,11' background rgb 'white'
} else {
    set terminal pngcairo size 1200,height enhanced font 'sans,10' background rgb 'white'
}
set output outfile

set datafile missing 'NaN'
set grid lc rgb '#dddddd'
set xlabel 'seconds from the fault'
set ylabel 'req/s (scoreboard)'
set yrange [0:*]
set xrange [-2.5:*]
set key top right font ',9' samplen 2 opaque
set linetype 1 lc rgb '#1f77b4' lw 2
set linetype 2 lc rgb '#ff7f0e' lw 2
set arrow 1 from 0, graph 0 to 0, graph 1 nohead dashtype 2 lc rgb '#d62728' lw 1.5
set label 1 'fault' at first 0.05, graph 0.95 tc rgb '#d62728' font ',9'

set multiplot layout rows,cols title "forkpool: throughput around an injected fault (▲ = first response from a replacement)" font ',13'
do for [i = 1:n] {
    f = word(faults, i)
    set title f font ',12'
    plot for [j = 1:words(modes)] sprintf('tl-%s-%s.dat', f, word(modes, j)) \
            using 1:2 with lines lt j title word(modes, j), \
         for [j = 1:words(modes)] sprintf('tl-%s-%s.marks', f, word(modes, j)) \
            using 1:2 with points lt j pt 9 ps 2 notitle
}
unset multiplot

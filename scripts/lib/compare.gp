# compare.gp: the chart of scripts/compare.sh, six panels of grouped bars
# (one group per workload, one bar per mode). Written by compare_report.py's
# chart(); run by hand from a results directory with:
#
#   gnuplot -e "datafile='chart.dat'; nmodes=2; modes='process thread'; \
#               term='svg'; outfile='chart.svg'" scripts/lib/compare.gp
#
# chart.dat: one row per workload: "name", then for each metric (in the
# order of the panels below) one column per mode, in the order of `modes`.
# NaN = not measured (drawn as no bar). Panels with a log scale say so.

if (!exists("datafile")) datafile = 'chart.dat'
if (!exists("nmodes")) nmodes = 2
if (!exists("modes")) modes = 'process thread'
if (!exists("term")) term = 'svg'
if (!exists("outfile")) outfile = 'chart.svg'

if (term eq 'svg') {
    set terminal svg size 1200,1050 dynamic enhanced font 'sans,11' background rgb 'white'
} else {
    set terminal pngcairo size 1200,1050 enhanced font 'sans,10' background rgb 'white'
}
set output outfile

set datafile missing 'NaN'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xtics nomirror rotate by 25 right scale 0
set ytics nomirror
set grid ytics lc rgb '#dddddd'
set linetype 1 lc rgb '#1f77b4'
set linetype 2 lc rgb '#ff7f0e'
set linetype 3 lc rgb '#2ca02c'

titles = "throughput_(req/s,_log) p50_latency_(ms,_log) p99_latency_(ms,_log) context_switches_per_request_(log) CPU_per_request_(µs,_log) total_PSS_of_the_workers_(MiB)"
logs = "1 1 1 1 1 0"

stats datafile using 2 nooutput
nrows = STATS_records
set xrange [-0.6:nrows - 0.4]

set multiplot layout 3,2 margins 0.06,0.98,0.05,0.90 spacing 0.07,0.11 title "forkpool: process vs thread at equal concurrency (medians)" font ",13"
do for [m = 1:6] {
    t = word(titles, m)
    if (m == 1) {
        set key at screen 0.5, 0.945 center center horizontal font ',10' samplen 2
    } else {
        unset key
    }
    set title system("echo '" . t . "' | tr _ ' '") font ',11'
    if (word(logs, m) eq '1') {
        set logscale y
        set yrange [*:*]
    } else {
        unset logscale y
        set yrange [0:*]
    }
    plot for [j = 1:nmodes] datafile using (column(1 + (m - 1) * nmodes + j)):xtic(1) \
        title word(modes, j) lt j
}
unset multiplot

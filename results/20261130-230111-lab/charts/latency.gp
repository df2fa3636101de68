# latency.png for scripts/lab.sh; redraw with: gnuplot latency.gp
set terminal pngcairo size 1200,730 noenhanced font 'sans,10' background rgb 'white'
set output '../latency.png'
set datafile missing 'NaN'
set grid lc rgb '#dddddd'
set style fill solid 0.8 border -1
set multiplot layout 2,2 title 'Open loop at K = 8 (oha -q, --latency-correction), static-1k' font ',13'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'p50 (ms)' font ',11'
set xlabel 'offered load, % of the measured maximum'
set ylabel 'ms'
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'latency-p1-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'latency-p1-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'latency-p1-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'p99 (ms)' font ',11'
set xlabel 'offered load, % of the measured maximum'
set ylabel 'ms'
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'latency-p2-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'latency-p2-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'latency-p2-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'p99.9 (ms)' font ',11'
set xlabel 'offered load, % of the measured maximum'
set ylabel 'ms'
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'latency-p3-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'latency-p3-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'latency-p3-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'max (ms)' font ',11'
set xlabel 'offered load, % of the measured maximum'
set ylabel 'ms'
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'latency-p4-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'latency-p4-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'latency-p4-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset multiplot

# sweep.png for scripts/lab.sh; redraw with: gnuplot sweep.gp
set terminal pngcairo size 1200,1060 noenhanced font 'sans,10' background rgb 'white'
set output '../sweep.png'
set datafile missing 'NaN'
set grid lc rgb '#dddddd'
set style fill solid 0.8 border -1
set multiplot layout 3,2 title 'K sweep, static-1k, closed loop (median, min–max over rounds)' font ',13'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'req/s' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'req/s'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'sweep-p1-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'sweep-p1-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'sweep-p1-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'CPU µs per request' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'µs'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'sweep-p2-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'sweep-p2-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'sweep-p2-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'voluntary context switches per request' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'switches'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'sweep-p3-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'sweep-p3-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'sweep-p3-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'involuntary context switches per request' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'switches'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'sweep-p4-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'sweep-p4-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'sweep-p4-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'fairness over workers or loops (Jain''s index)' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'index'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'sweep-p5-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'sweep-p5-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'p99 latency (closed loop, ms)' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'ms'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'sweep-p6-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'sweep-p6-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'sweep-p6-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset multiplot

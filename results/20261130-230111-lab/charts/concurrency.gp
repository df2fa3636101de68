# concurrency.png for scripts/lab.sh; redraw with: gnuplot concurrency.gp
set terminal pngcairo size 1200,400 noenhanced font 'sans,10' background rgb 'white'
set output '../concurrency.png'
set datafile missing 'NaN'
set grid lc rgb '#dddddd'
set style fill solid 0.8 border -1
set multiplot layout 1,2 title 'Concurrency sweep at K = 8, static-1k, closed loop' font ',13'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'req/s against connections' font ',11'
set xlabel 'connections'
set ylabel 'req/s'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'concurrency-p1-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'concurrency-p1-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'concurrency-p1-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'p99 latency against connections (ms)' font ',11'
set xlabel 'connections'
set ylabel 'ms'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'concurrency-p2-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'concurrency-p2-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'concurrency-p2-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset multiplot

# claim-sync.png for scripts/lab.sh; redraw with: gnuplot claim-sync.gp
set terminal pngcairo size 1200,730 noenhanced font 'sans,10' background rgb 'white'
set output '../claim-sync.png'
set datafile missing 'NaN'
set grid lc rgb '#dddddd'
set style fill solid 0.8 border -1
set multiplot layout 2,2 title 'Threads need synchronisation, which slows them? (/-/work/shared?ops=10000)' font ',13'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'CPU µs per request: shared minus static-1k (the lock and the cache)' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'µs'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'claim-sync-p1-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'claim-sync-p1-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'claim-sync-p1-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'req/s on shared' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'req/s'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'claim-sync-p2-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'claim-sync-p2-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'claim-sync-p2-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'involuntary context switches per shared request' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'switches'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'claim-sync-p3-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'claim-sync-p3-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'claim-sync-p3-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'voluntary context switches per shared request' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'switches'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'claim-sync-p4-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'claim-sync-p4-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'claim-sync-p4-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset multiplot

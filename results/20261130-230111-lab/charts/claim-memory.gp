# claim-memory.png for scripts/lab.sh; redraw with: gnuplot claim-memory.gp
set terminal pngcairo size 1200,730 noenhanced font 'sans,10' background rgb 'white'
set output '../claim-memory.png'
set datafile missing 'NaN'
set grid lc rgb '#dddddd'
set style fill solid 0.8 border -1
set multiplot layout 2,2 title 'Processes use more memory? Total PSS of the workers after the load' font ',13'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'total PSS of the workers (MiB)' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'MiB'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'claim-memory-p1-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'claim-memory-p1-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'claim-memory-p1-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'PSS per worker or thread (KiB)' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'KiB'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'claim-memory-p2-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'claim-memory-p2-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'claim-memory-p2-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'total USS of the workers (MiB)' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'MiB'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'claim-memory-p3-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'claim-memory-p3-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'claim-memory-p3-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'RSS summed over the workers (MiB)' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'MiB'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'claim-memory-p4-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'claim-memory-p4-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'claim-memory-p4-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset multiplot

# crash-timeline.png for scripts/lab.sh; redraw with: gnuplot crash-timeline.gp
set terminal pngcairo size 1200,1060 noenhanced font 'sans,10' background rgb 'white'
set output '../crash-timeline.png'
set datafile missing 'NaN'
set grid lc rgb '#dddddd'
set style fill solid 0.8 border -1
set multiplot layout 3,2 title 'Throughput around each fault (first repeat)' font ',13'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'abort' font ',11'
set xlabel 'seconds from the fault'
set ylabel 'req/s'
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'crash-timeline-p1-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process (reuseport)', \
     'crash-timeline-p1-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops (reuseport)', \
     'crash-timeline-p1-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread (reuseport)', \
     'crash-timeline-p1-s4.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process (shared)'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'segv' font ',11'
set xlabel 'seconds from the fault'
set ylabel 'req/s'
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'crash-timeline-p2-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process (reuseport)', \
     'crash-timeline-p2-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops (reuseport)', \
     'crash-timeline-p2-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread (reuseport)'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'hang' font ',11'
set xlabel 'seconds from the fault'
set ylabel 'req/s'
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'crash-timeline-p3-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process (reuseport)', \
     'crash-timeline-p3-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops (reuseport)', \
     'crash-timeline-p3-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread (reuseport)'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'leak' font ',11'
set xlabel 'seconds from the fault'
set ylabel 'req/s'
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'crash-timeline-p4-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process (reuseport)', \
     'crash-timeline-p4-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops (reuseport)', \
     'crash-timeline-p4-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread (reuseport)'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'panic' font ',11'
set xlabel 'seconds from the fault'
set ylabel 'req/s'
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'crash-timeline-p5-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process (reuseport)', \
     'crash-timeline-p5-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops (reuseport)', \
     'crash-timeline-p5-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread (reuseport)'
unset multiplot

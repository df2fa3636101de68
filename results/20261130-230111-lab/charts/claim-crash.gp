# claim-crash.png for scripts/lab.sh; redraw with: gnuplot claim-crash.gp
set terminal pngcairo size 1200,400 noenhanced font 'sans,10' background rgb 'white'
set output '../claim-crash.png'
set datafile missing 'NaN'
set grid lc rgb '#dddddd'
set style fill solid 0.8 border -1
set multiplot layout 1,2 title 'Processes isolate crashes? A thread''s crash takes its whole process?' font ',13'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'keep-alive connections lost ÷ open at the fault (K = 4)' font ',11'
set xlabel 'fault'
set ylabel 'share lost'
set yrange [0:*]
set arrow from graph 0, first 0.25 to graph 1, first 0.25 nohead dashtype 2 lc rgb '#d62728' lw 1.5
set label '1/K = 0.25' at graph 0.99, first 0.25 right offset 0,0.6 tc rgb '#d62728' font ',9'
set xtics ('abort' 0, 'segv' 1, 'hang' 2, 'leak' 3, 'panic' 4)
set xrange [-0.6:4.6]
set boxwidth 0.2000
plot 'claim-crash-p1-s1.dat' using ($1+-0.3000):2 with boxes lc rgb '#1f77b4' title 'process (reuseport)', \
     'claim-crash-p1-s1.dat' using ($1+-0.3000):2:3:4 with yerrorbars lc rgb '#333333' pt 0 notitle, \
     'claim-crash-p1-s2.dat' using ($1+-0.1000):2 with boxes lc rgb '#2ca02c' title 'thread-loops (reuseport)', \
     'claim-crash-p1-s2.dat' using ($1+-0.1000):2:3:4 with yerrorbars lc rgb '#333333' pt 0 notitle, \
     'claim-crash-p1-s3.dat' using ($1+0.1000):2 with boxes lc rgb '#ff7f0e' title 'thread (reuseport)', \
     'claim-crash-p1-s3.dat' using ($1+0.1000):2:3:4 with yerrorbars lc rgb '#333333' pt 0 notitle, \
     'claim-crash-p1-s4.dat' using ($1+0.3000):2 with boxes lc rgb '#1f77b4' title 'process (shared)', \
     'claim-crash-p1-s4.dat' using ($1+0.3000):2:3:4 with yerrorbars lc rgb '#333333' pt 0 notitle
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'throughput around an abort (scoreboard, t = 0 at the fault)' font ',11'
set xlabel 'seconds from the fault'
set ylabel 'req/s'
set offsets graph 0.04, graph 0.04, 0, 0
set yrange [0:*]
plot 'claim-crash-p2-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process (reuseport)', \
     'claim-crash-p2-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops (reuseport)', \
     'claim-crash-p2-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread (reuseport)', \
     'claim-crash-p2-s4.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process (shared)'
unset multiplot

# claim-switch.png for scripts/lab.sh; redraw with: gnuplot claim-switch.gp
set terminal pngcairo size 1200,1060 noenhanced font 'sans,10' background rgb 'white'
set output '../claim-switch.png'
set datafile missing 'NaN'
set grid lc rgb '#dddddd'
set style fill solid 0.8 border -1
set multiplot layout 3,2 title 'Process switches cost more than thread switches?' font ',13'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'ns per switch over a eventfd (median, min–max over rounds)' font ',11'
set xlabel 'working set touched per switch, each side'
set ylabel 'ns'
set yrange [0:*]
set xtics ('0 KiB' 0, '1024 KiB' 1, '8192 KiB' 2)
set xrange [-0.6:2.6]
set boxwidth 0.4000
plot 'claim-switch-p1-s1.dat' using ($1+-0.2000):2 with boxes lc rgb '#1f77b4' title 'process', \
     'claim-switch-p1-s1.dat' using ($1+-0.2000):2:3:4 with yerrorbars lc rgb '#333333' pt 0 notitle, \
     'claim-switch-p1-s2.dat' using ($1+0.2000):2 with boxes lc rgb '#ff7f0e' title 'thread', \
     'claim-switch-p1-s2.dat' using ($1+0.2000):2:3:4 with yerrorbars lc rgb '#333333' pt 0 notitle
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'ns per switch over a futex (median, min–max over rounds)' font ',11'
set xlabel 'working set touched per switch, each side'
set ylabel 'ns'
set yrange [0:*]
set xtics ('0 KiB' 0, '1024 KiB' 1, '8192 KiB' 2)
set xrange [-0.6:2.6]
set boxwidth 0.4000
plot 'claim-switch-p2-s1.dat' using ($1+-0.2000):2 with boxes lc rgb '#1f77b4' title 'process', \
     'claim-switch-p2-s1.dat' using ($1+-0.2000):2:3:4 with yerrorbars lc rgb '#333333' pt 0 notitle, \
     'claim-switch-p2-s2.dat' using ($1+0.2000):2 with boxes lc rgb '#ff7f0e' title 'thread', \
     'claim-switch-p2-s2.dat' using ($1+0.2000):2:3:4 with yerrorbars lc rgb '#333333' pt 0 notitle
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'ns per switch over a pipe (median, min–max over rounds)' font ',11'
set xlabel 'working set touched per switch, each side'
set ylabel 'ns'
set yrange [0:*]
set xtics ('0 KiB' 0, '1024 KiB' 1, '8192 KiB' 2)
set xrange [-0.6:2.6]
set boxwidth 0.4000
plot 'claim-switch-p3-s1.dat' using ($1+-0.2000):2 with boxes lc rgb '#1f77b4' title 'process', \
     'claim-switch-p3-s1.dat' using ($1+-0.2000):2:3:4 with yerrorbars lc rgb '#333333' pt 0 notitle, \
     'claim-switch-p3-s2.dat' using ($1+0.2000):2 with boxes lc rgb '#ff7f0e' title 'thread', \
     'claim-switch-p3-s2.dat' using ($1+0.2000):2:3:4 with yerrorbars lc rgb '#333333' pt 0 notitle
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'in the server: CPU µs per static-1k request' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'µs'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'claim-switch-p4-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'claim-switch-p4-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'claim-switch-p4-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset logscale
unset arrow
unset label
set xtics autofreq
set autoscale x
set autoscale y
set offsets 0, 0, 0, 0
set key below horizontal font ',9' samplen 2
set title 'in the server: context switches per request (voluntary + involuntary)' font ',11'
set xlabel 'K (workers or threads)'
set ylabel 'switches'
set logscale x 2
set offsets graph 0.04, graph 0.04, 0, 0
set logscale y
plot 'claim-switch-p5-s1.dat' using 1:2:3:4 with yerrorlines lc rgb '#1f77b4' lw 2 pt 7 ps 0.8 title 'process', \
     'claim-switch-p5-s2.dat' using 1:2:3:4 with yerrorlines lc rgb '#2ca02c' lw 2 pt 7 ps 0.8 title 'thread-loops', \
     'claim-switch-p5-s3.dat' using 1:2:3:4 with yerrorlines lc rgb '#ff7f0e' lw 2 pt 7 ps 0.8 title 'thread'
unset multiplot

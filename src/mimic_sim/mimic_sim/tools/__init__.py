"""mimic's tools around the simulation core: the ``mimic`` command host and its verbs
(render, launch, report, urdf), rosbag2 bags, scenario graphs and their launcher, the
Gazebo description, and the nodes' parameter declarations.  They use the core
(``mimic_sim.*``); the core never imports them."""

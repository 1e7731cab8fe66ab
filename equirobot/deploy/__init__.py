"""Deployment over ROS: the policy node, its safety layer, the transports and a simulated arm.

``node`` (the policy node) and everything it imports run without robosuite or MuJoCo; ``sim_robot`` is
the simulated arm and needs the simulator.
"""

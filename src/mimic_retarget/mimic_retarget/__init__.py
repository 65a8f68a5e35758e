"""mimic_retarget: human motion (DeepMimic clips, BVH, 3D keypoints) onto URDF robots.

Plain Python, no ROS import: robots and their mapping files, human skeletons and
keypoint sequences, whole-body IK retargeting; ``retarget_node`` is the thin ROS 2
adapter over it.
"""

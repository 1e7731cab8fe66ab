# The deploy node on a robot's computer (ROS 1 from Debian; no simulator needed to run the policy):
#   docker build -f docker/ros.Dockerfile -t equirobot:ros .
#   docker run --rm --net=host -v $PWD/runs:/equirobot/runs equirobot:ros \
#       equirobot deploy checkpoint=runs/<run> robot=sim_panda transport=ros1
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gfortran gcc g++ make \
        ros-core python3-rospy python3-geometry-msgs python3-sensor-msgs python3-std-msgs \
        libegl1 libgl1 libgles2 \
    && rm -rf /var/lib/apt/lists/*

ENV MUJOCO_GL=egl PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH
# the venv sees Debian's rospy (appended to sys.path, so the venv's own packages come first)
RUN python3 -m venv /opt/venv \
    && echo /usr/lib/python3/dist-packages > /opt/venv/lib/python3.11/site-packages/debian_ros.pth
WORKDIR /equirobot
COPY . .
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -e .
CMD ["equirobot", "deploy", "--help"]

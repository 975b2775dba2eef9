# genie_folder_library(<name> <dep>...): the folder's *.cpp (and *.cu when given) as one static
# library linking the layers beneath it; an INTERFACE library while the folder is still empty.
function(genie_folder_library name)
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  list(FILTER _srcs EXCLUDE REGEX ".*_main\\.cpp$")
  if(_srcs)
    add_library(${name} STATIC ${_srcs})
    target_compile_options(${name} PRIVATE ${GENIE_WARNINGS})
    target_link_libraries(${name} PUBLIC ${ARGN})
  else()
    add_library(${name} INTERFACE)
    target_link_libraries(${name} INTERFACE ${ARGN})
  endif()
endfunction()

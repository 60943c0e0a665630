# Writes the linker version script of libtelemachy.so (docs/library.md):
# the functions declared in the installed public headers
# (include/telemachy/*.h but server.h) are exported, everything else —
# module internals (tlm_<module>__*), the util helpers, the db layer — is
# local.  Run as: cmake -DSRC=<source dir> -DOUT=<file> -P gen_symbols.cmake
file(GLOB headers ${SRC}/include/telemachy/*.h)
list(FILTER headers EXCLUDE REGEX "/server\\.h$")
list(SORT headers)
set(names "")
foreach(h ${headers})
  file(READ ${h} text)
  # A declaration: a return type, then the name and its "(" (function
  # pointer typedefs, "(*tlm_x)(", do not match: ")" follows their name).
  string(REGEX MATCHALL "[A-Za-z_][A-Za-z0-9_ ]*[ *](tlm_[a-z0-9_]+)\\(" decls "${text}")
  foreach(d ${decls})
    string(REGEX REPLACE ".*[ *](tlm_[a-z0-9_]+)\\($" "\\1" n "${d}")
    if(NOT d MATCHES "^(static|define)" AND NOT n MATCHES "__")
      list(APPEND names ${n})
    endif()
  endforeach()
endforeach()
list(REMOVE_DUPLICATES names)
list(SORT names)
set(script "TELEMACHY_0 {\n  global:\n")
foreach(n ${names})
  string(APPEND script "    ${n};\n")
endforeach()
string(APPEND script "  local:\n    *;\n};\n")
file(WRITE ${OUT}.tmp "${script}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)

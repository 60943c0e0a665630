# Turns the file IN into a C source OUT defining SYMBOL[] (NUL-terminated;
# default tlm__schema_json).
if(NOT SYMBOL)
  set(SYMBOL tlm__schema_json)
endif()
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} */\nconst char ${SYMBOL}[] = {${bytes}0x00};\n")

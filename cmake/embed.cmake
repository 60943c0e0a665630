# Turns the file IN into a C source OUT defining tlm__schema_json[] (NUL-terminated).
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} */\nconst char tlm__schema_json[] = {${bytes}0x00};\n")

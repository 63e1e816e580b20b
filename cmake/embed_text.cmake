# Generates a C file holding one text file as a string constant, so that a
# binary carries data it needs wherever it is run from.
# Inputs: IN (the file), OUT (the C file), NAME (the constant's name),
# HEADER (the header declaring it).
file(READ ${IN} body)
string(REPLACE "\\" "\\\\" body "${body}")
string(REPLACE "\"" "\\\"" body "${body}")
string(REPLACE "\n" "\\n\"\n    \"" body "${body}")
get_filename_component(in_name ${IN} NAME)
set(out "/* Generated from ${in_name} by cmake/embed_text.cmake; do not edit. */\n")
string(APPEND out "#include \"${HEADER}\"\n\n")
string(APPEND out "const char ${NAME}[] =\n    \"${body}\";\n")
file(WRITE ${OUT}.tmp "${out}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)

# Writes OUT, a C++ file defining qfae::report::kReportCss and kReportJs from the files CSS and JS
# (run by the build when either changes: cmake -DCSS=... -DJS=... -DOUT=... -P embed_assets.cmake).
file(READ "${CSS}" css)
file(READ "${JS}" js)
foreach(text IN ITEMS "${css}" "${js}")
  string(FIND "${text}" ")qfae_asset\"" found)
  if(NOT found EQUAL -1)
    message(FATAL_ERROR "an asset holds the raw-string delimiter )qfae_asset\"")
  endif()
endforeach()
file(WRITE "${OUT}.tmp"
     "// Written by cmake/embed_assets.cmake from src/report/assets/; do not edit.\n"
     "#include \"qfae/report/assets.h\"\n"
     "namespace qfae::report {\n"
     "const char* const kReportCss = R\"qfae_asset(${css})qfae_asset\";\n"
     "const char* const kReportJs = R\"qfae_asset(${js})qfae_asset\";\n"
     "}  // namespace qfae::report\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")

// String operations with Python's semantics, for reproducing the harness's
// preprocessing exactly: its task code runs on Python `str`, whose length is
// in code points and whose whitespace is Unicode whitespace.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gptneo::eval {

// Python's str.isspace() for one code point (also what `\s` matches in a
// `str` regular expression).
bool is_python_space(char32_t cp);
// len(s) of the Python string `s` is (code points). `s` must be valid UTF-8.
int64_t code_points(std::string_view s);
// len(re.split(r"\s+", s)): one more than the number of whitespace runs.
int64_t python_word_count(std::string_view s);
// s.strip() / s.rstrip() (Unicode whitespace).
std::string_view python_strip(std::string_view s);
std::string_view python_rstrip(std::string_view s);
// s.replace(from, to) (every non-overlapping occurrence, left to right).
std::string replace_all(std::string_view s, std::string_view from, std::string_view to);
// s.capitalize() for ASCII letters: the first character upper case, the
// rest lower case. Other letters are left as they are.
std::string ascii_capitalize(std::string_view s);

// Decodes the code point at s[i] (valid UTF-8) and returns its byte length.
int utf8_decode(std::string_view s, size_t i, char32_t& cp);

}  // namespace gptneo::eval

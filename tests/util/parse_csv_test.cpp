// qfae::parse_csv (util/files.h), the reader of the CSV files the report pages show, against
// hand-written RFC 4180 cases.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../support/user_error.h"
#include "qfae/util/files.h"

TEST(ParseCsv, QuotedFieldsLineEndsAndEmptyFields) {
  using Rows = std::vector<std::vector<std::string>>;
  EXPECT_EQ(qfae::parse_csv("a,b\n\"x,1\",\"say \"\"hi\"\"\"\n"),
            (Rows{{"a", "b"}, {"x,1", "say \"hi\""}}));
  EXPECT_EQ(qfae::parse_csv("\"two\nlines\",2\r\nlast,,"),
            (Rows{{"two\nlines", "2"}, {"last", "", ""}}));
  EXPECT_EQ(qfae::parse_csv(""), Rows{});
  EXPECT_NE(qfae::test::user_error([] { qfae::parse_csv("a,\"open\n"); }).find("not closed"),
            std::string::npos);
}

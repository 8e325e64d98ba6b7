// Reading walfeed's Prometheus endpoint (--metrics-listen) in tests: one scrape, one sample.
#ifndef WALFEED_TESTS_SUPPORT_METRICS_SCRAPE_H_
#define WALFEED_TESTS_SUPPORT_METRICS_SCRAPE_H_

#include <string>

namespace walfeed::test {

// GET http://127.0.0.1:port/metrics over a plain socket; the body, or "" when nothing answers.
std::string Scrape(int port);

// The value of the first sample whose line starts with `series` (name and labels), or -1.
double Sample(const std::string& metrics, const std::string& series);

}  // namespace walfeed::test

#endif  // WALFEED_TESTS_SUPPORT_METRICS_SCRAPE_H_

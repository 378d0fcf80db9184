/*
 * Wiring String (Device OS 2.3.1 wiring/inc/spark_wiring_string.h), the subset the companion and
 * typical apps use. Backed by std::string: this header only exists for the host build.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string>

class __FlashStringHelper;

class String {
public:
    String() = default;
    String(const char* s) : s_(s ? s : "") {}
    String(const char* s, unsigned len) : s_(s ? std::string(s, len) : std::string()) {}
    String(const String&) = default;
    String(String&&) = default;
    explicit String(char c) : s_(1, c) {}
    explicit String(unsigned char v, unsigned char base = 10);
    explicit String(int v, unsigned char base = 10);
    explicit String(unsigned int v, unsigned char base = 10);
    explicit String(long v, unsigned char base = 10);
    explicit String(unsigned long v, unsigned char base = 10);
    explicit String(float v, int decimalPlaces = 6);
    explicit String(double v, int decimalPlaces = 6);

    String& operator=(const String&) = default;
    String& operator=(String&&) = default;
    String& operator=(const char* s) { s_ = s ? s : ""; return *this; }

    static String format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

    unsigned length() const { return (unsigned)s_.size(); }
    const char* c_str() const { return s_.c_str(); }
    operator const char*() const { return s_.c_str(); }
    char charAt(unsigned i) const { return i < s_.size() ? s_[i] : 0; }
    char operator[](unsigned i) const { return charAt(i); }
    void setCharAt(unsigned i, char c) { if (i < s_.size()) s_[i] = c; }
    bool reserve(unsigned size) { s_.reserve(size); return true; }

    bool concat(const String& o) { s_ += o.s_; return true; }
    bool concat(const char* s) { if (s) s_ += s; return true; }
    bool concat(char c) { s_ += c; return true; }
    bool concat(int v) { return concat(String(v)); }
    bool concat(unsigned v) { return concat(String(v)); }
    bool concat(long v) { return concat(String(v)); }
    bool concat(unsigned long v) { return concat(String(v)); }
    bool concat(double v) { return concat(String(v, 2)); }
    template <typename T> String& operator+=(const T& v) { concat(v); return *this; }

    friend String operator+(const String& a, const String& b) { String r(a); r.concat(b); return r; }
    friend String operator+(const String& a, const char* b) { String r(a); r.concat(b); return r; }
    friend String operator+(const char* a, const String& b) { String r(a); r.concat(b); return r; }
    friend String operator+(const String& a, char c) { String r(a); r.concat(c); return r; }
    friend String operator+(const String& a, int v) { String r(a); r.concat(v); return r; }
    friend String operator+(const String& a, unsigned v) { String r(a); r.concat(v); return r; }
    friend String operator+(const String& a, long v) { String r(a); r.concat(v); return r; }
    friend String operator+(const String& a, double v) { String r(a); r.concat(v); return r; }

    int compareTo(const String& o) const { return s_.compare(o.s_); }
    bool equals(const String& o) const { return s_ == o.s_; }
    bool equals(const char* s) const { return s_ == (s ? s : ""); }
    bool equalsIgnoreCase(const String& o) const;
    bool operator==(const String& o) const { return equals(o); }
    bool operator==(const char* s) const { return equals(s); }
    bool operator!=(const String& o) const { return !equals(o); }
    bool operator!=(const char* s) const { return !equals(s); }
    bool operator<(const String& o) const { return s_ < o.s_; }
    bool startsWith(const String& p) const { return s_.compare(0, p.s_.size(), p.s_) == 0; }
    bool endsWith(const String& p) const {
        return p.s_.size() <= s_.size() && s_.compare(s_.size() - p.s_.size(), p.s_.size(), p.s_) == 0;
    }

    int indexOf(char c, unsigned from = 0) const { auto p = s_.find(c, from); return p == std::string::npos ? -1 : (int)p; }
    int indexOf(const String& s, unsigned from = 0) const { auto p = s_.find(s.s_, from); return p == std::string::npos ? -1 : (int)p; }
    int lastIndexOf(char c) const { auto p = s_.rfind(c); return p == std::string::npos ? -1 : (int)p; }
    String substring(unsigned from) const { return from >= s_.size() ? String() : String(s_.substr(from).c_str()); }
    String substring(unsigned from, unsigned to) const;
    String& replace(const String& find, const String& repl);
    String& remove(unsigned index, unsigned count = (unsigned)-1);
    String& toLowerCase();
    String& toUpperCase();
    String& trim();
    long toInt() const;
    float toFloat() const;
    void getBytes(unsigned char* buf, unsigned len, unsigned index = 0) const;
    void toCharArray(char* buf, unsigned len, unsigned index = 0) const { getBytes((unsigned char*)buf, len, index); }

private:
    std::string s_;
};

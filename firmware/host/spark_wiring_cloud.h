/*
 * CloudClass `Particle` (device-os@v2.3.1 wiring/inc/spark_wiring_cloud.h): connection, publish,
 * subscribe, functions, variables. Handlers are stored in the host layer and invoked by the
 * simulator through otarig_call_function / otarig_get_variable / otarig_cloud_event.
 */
#pragma once

#include <functional>
#include <stdint.h>
#include "spark_wiring_string.h"

typedef enum { MY_DEVICES, ALL_DEVICES } Spark_Subscription_Scope_TypeDef;
typedef void (*EventHandler)(const char* event_name, const char* data);
typedef int(user_function_int_str_t)(String paramString);

const uint32_t PUBLISH_EVENT_FLAG_PUBLIC = 0x0;
const uint32_t PUBLISH_EVENT_FLAG_PRIVATE = 0x1;
const uint32_t PUBLISH_EVENT_FLAG_NO_ACK = 0x2;
const uint32_t PUBLISH_EVENT_FLAG_WITH_ACK = 0x8;

/** Publish flags; combinable with `|` like particle::Flags in Device OS. */
class PublishFlags {
public:
    constexpr PublishFlags() : v_(0) {}
    constexpr explicit PublishFlags(uint32_t v) : v_((uint8_t)v) {}
    constexpr uint8_t value() const { return v_; }
    constexpr PublishFlags operator|(PublishFlags o) const { return PublishFlags((uint32_t)(v_ | o.v_)); }

private:
    uint8_t v_;
};
typedef PublishFlags PublishFlag;

const PublishFlag PUBLIC(PUBLISH_EVENT_FLAG_PUBLIC);
const PublishFlag PRIVATE(PUBLISH_EVENT_FLAG_PRIVATE);
const PublishFlag NO_ACK(PUBLISH_EVENT_FLAG_NO_ACK);
const PublishFlag WITH_ACK(PUBLISH_EVENT_FLAG_WITH_ACK);

namespace particle {
template <typename T>
class Future;

/** Completed future: the simulator answers publish synchronously (blocking when it wants). */
template <>
class Future<bool> {
public:
    explicit Future(bool ok) : ok_(ok) {}
    bool isDone() const { return true; }
    bool isSucceeded() const { return ok_; }
    bool isFailed() const { return !ok_; }
    bool result() const { return ok_; }
    Future& wait() { return *this; }
    operator bool() const { return ok_; }

private:
    bool ok_;
};
}  // namespace particle

class CloudClass {
public:
    static bool variable(const char* name, const int& var);
    static bool variable(const char* name, const uint32_t& var);
    static bool variable(const char* name, const double& var);
    static bool variable(const char* name, const bool& var);
    static bool variable(const char* name, const String& var);
    static bool variable(const char* name, const char* var);

    static bool function(const char* name, user_function_int_str_t* fn);
    static bool function(const char* name, std::function<int(String)> fn);

    static bool subscribe(const char* prefix, EventHandler handler);
    static bool subscribe(const char* prefix, EventHandler handler, Spark_Subscription_Scope_TypeDef scope);
    static bool subscribe(const char* prefix, std::function<void(const char*, const char*)> handler);
    static void unsubscribe();

    static particle::Future<bool> publish(const char* name) { return publish_(name, nullptr, PUBLIC); }
    static particle::Future<bool> publish(const char* name, const char* data) { return publish_(name, data, PUBLIC); }
    static particle::Future<bool> publish(const char* name, const char* data, int /*ttl*/) { return publish_(name, data, PUBLIC); }
    static particle::Future<bool> publish(const char* name, const char* data, PublishFlags f1, PublishFlags f2 = PublishFlags()) {
        return publish_(name, data, f1 | f2);
    }
    static particle::Future<bool> publish(const char* name, const char* data, int /*ttl*/, PublishFlags f1, PublishFlags f2 = PublishFlags()) {
        return publish_(name, data, f1 | f2);
    }
    static particle::Future<bool> publish(const char* name, PublishFlags f1, PublishFlags f2 = PublishFlags()) {
        return publish_(name, nullptr, f1 | f2);
    }
    static particle::Future<bool> publish(const String& name) { return publish_(name.c_str(), nullptr, PUBLIC); }
    static particle::Future<bool> publish(const String& name, const String& data) { return publish_(name.c_str(), data.c_str(), PUBLIC); }
    static particle::Future<bool> publish(const String& name, const String& data, PublishFlags f1, PublishFlags f2 = PublishFlags()) {
        return publish_(name.c_str(), data.c_str(), f1 | f2);
    }

    static void connect();
    static void disconnect();
    static bool connected();
    static bool disconnected() { return !connected(); }
    static bool connecting();
    static void process();
    static String deviceID();

private:
    static particle::Future<bool> publish_(const char* name, const char* data, PublishFlags flags);
};

extern CloudClass Particle;

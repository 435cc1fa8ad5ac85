// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.fabric8.kubernetes.client.server.mock.KubernetesAttributesExtractor;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.mockwebserver.crud.Attribute;
import io.fabric8.mockwebserver.crud.AttributeSet;
import io.fabric8.mockwebserver.crud.AttributeType;
import io.fabric8.mockwebserver.crud.CrudDispatcher;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import io.fabric8.zjsonpatch.JsonPatchException;
import java.lang.reflect.Field;
import java.util.AbstractMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * Fabric8's CRUD store, answering as a real API server where Fabric8's leaves a request unanswered,
 * and finding an object by its name without reading every other.
 *
 * <p>A JSON patch that does not apply to the object as stored (a {@code replace} or {@code remove}
 * of a label another client removed since the patch's author read the object, say): the API server
 * answers 422 before it looks at the resourceVersion the patch carries (k8s.io/apiserver, {@code
 * jsonPatcher.applyJSPatch}); Fabric8's mock throws on its event loop and never answers, so that
 * the client waits out its request timeout (10 s) instead.
 *
 * <p>Each create, patch and update looks its object up ({@code findResource}), and Fabric8 compares
 * the request with every object stored, one after another, on its one event loop: with 1,000
 * MigrationRequests and their pods, Events and records (make bench-operator), nine in ten of the
 * test API server's samples were that comparison, and the server used twice the operator's CPU per
 * migration on the same two cores. An API server reads an object by its key. Here the stored
 * objects are also kept by name, and a lookup, GET or DELETE that names one compares only those of
 * that name; which one matches is decided by Fabric8's own comparison, under its own lock.
 */
public class ApiServerCrud extends KubernetesCrudDispatcher {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final NamedEntries entries = new NamedEntries();

  public ApiServerCrud() {
    try {
      // Fabric8's store is a final field its subclasses may read, with no hook on its writes:
      // ours is a LinkedHashMap as Fabric8's, that also indexes what is put and removed.
      Field map = CrudDispatcher.class.getDeclaredField("map");
      map.setAccessible(true);
      map.set(this, entries);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("Fabric8's CrudDispatcher has no field 'map' any more", e);
    }
  }

  @Override
  public MockResponse handlePatch(RecordedRequest request) {
    try {
      return super.handlePatch(request);
    } catch (JsonPatchException e) {
      return new MockResponse().setResponseCode(422).setBody(unprocessable(e.getMessage()));
    }
  }

  /** The lookup of a create, patch or update looks among the objects of its name. */
  @Override
  public Map.Entry<AttributeSet, String> findResource(AttributeSet query) {
    return entries.narrowedTo(named(query), () -> super.findResource(query));
  }

  /** A GET of one object likewise. */
  @Override
  public MockResponse handleGet(String path) {
    return entries.narrowedTo(
        named(attributeExtractor.fromPath(path)), () -> super.handleGet(path));
  }

  /** A DELETE of one object likewise. */
  @Override
  public MockResponse handleDelete(String path) {
    return entries.narrowedTo(
        named(attributeExtractor.fromPath(path)), () -> super.handleDelete(path));
  }

  /** The name a query asks for exactly; null when it asks for none (a list, say). */
  private static Attribute named(AttributeSet query) {
    Attribute name = query.getAttribute(KubernetesAttributesExtractor.NAME);
    return name == null || name.getType() != AttributeType.WITH ? null : name;
  }

  /** The Status a real API server sends with a 422 for a patch it could not apply. */
  private static String unprocessable(String message) {
    ObjectNode status = JSON.createObjectNode();
    status.put("kind", "Status").put("apiVersion", "v1").putObject("metadata");
    status.put("status", "Failure").put("message", message).put("reason", "Invalid");
    status.put("code", 422);
    return status.toString();
  }

  /**
   * The stored objects, in the order they were stored, and by their name attribute, in that order
   * too: Fabric8 writes its store through put, remove and clear alone. Fabric8's lookups, GETs and
   * DELETEs read the whole store through entrySet and keep what matches; while one is {@link
   * #narrowedTo} a name, entrySet holds only the objects of that name, which are all that can
   * match.
   */
  static final class NamedEntries extends LinkedHashMap<AttributeSet, String> {
    private final Map<Attribute, Set<AttributeSet>> byName = new HashMap<>();
    private final ThreadLocal<Attribute> narrowed = new ThreadLocal<>();

    /** Runs {@code call} with entrySet narrowed to {@code name} on this thread; none: the whole. */
    <T> T narrowedTo(Attribute name, Supplier<T> call) {
      if (name == null) {
        return call.get();
      }
      Attribute outer = narrowed.get(); // a DELETE's own lookup, say: the same name
      narrowed.set(name);
      try {
        return call.get();
      } finally {
        if (outer == null) {
          narrowed.remove();
        } else {
          narrowed.set(outer);
        }
      }
    }

    @Override
    public Set<Map.Entry<AttributeSet, String>> entrySet() {
      Attribute name = narrowed.get();
      if (name == null) {
        return super.entrySet();
      }
      Set<Map.Entry<AttributeSet, String>> some = new LinkedHashSet<>();
      for (AttributeSet key : named(name)) {
        some.add(new AbstractMap.SimpleImmutableEntry<>(key, get(key)));
      }
      return some;
    }

    @Override
    public String put(AttributeSet key, String value) {
      Attribute name = key.getAttribute(KubernetesAttributesExtractor.NAME);
      if (name != null) {
        byName.computeIfAbsent(name, n -> new LinkedHashSet<>()).add(key);
      }
      return super.put(key, value);
    }

    @Override
    public String remove(Object key) {
      if (key instanceof AttributeSet set && containsKey(set)) {
        Attribute name = set.getAttribute(KubernetesAttributesExtractor.NAME);
        Set<AttributeSet> same = name == null ? null : byName.get(name);
        if (same != null) {
          same.remove(set);
          if (same.isEmpty()) {
            byName.remove(name);
          }
        }
      }
      return super.remove(key);
    }

    @Override
    public void clear() {
      byName.clear();
      super.clear();
    }

    /** The keys stored with this name attribute, oldest first. */
    private Set<AttributeSet> named(Attribute name) {
      return byName.getOrDefault(name, Set.of());
    }
  }
}
